package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/mongostore"
)

// Open connects to a MongoDB server and keeps the service's collections in
// the database "idm" with the prefix "idm_". A server that is down makes
// calls fail within a second with an error that wraps idm.ErrUnavailable,
// which handlers answer with 503.
func ExampleOpen() {
	ctx := context.Background()
	store, err := mongostore.Open(ctx, "mongodb://db.example:27017/?replicaSet=rs0", "idm",
		mongostore.WithCollectionPrefix("idm_"),
		mongostore.WithServerSelectionTimeout(time.Second),
	)
	if errors.Is(err, idm.ErrUnavailable) {
		log.Fatal("the database cannot be reached: ", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	u, err := store.FindUserByUsername(ctx, "alice@example.org")
	switch {
	case errors.Is(err, idm.ErrNotFound):
		fmt.Println("no such user")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println(u.ID)
	}
}
