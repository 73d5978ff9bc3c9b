package migrate_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/migrate"
)

// Run reads the original service's collection and writes into the new
// store; this is what `idmd migrate --from <uri>` does. With DryRun set it
// only reports what it would write.
func ExampleRun() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://legacy.example:27017/"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)

	store, err := boltstore.Open("/var/lib/idm/idm.db")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	rep, err := migrate.Run(ctx, migrate.Config{
		Source:        client.Database("test").Collection(migrate.DefaultCollection),
		Target:        store,
		DryRun:        false,
		Progress:      os.Stderr,
		ProgressEvery: 5 * time.Second,
		Logger:        slog.Default(),
	})
	fmt.Print(rep)
	if err != nil {
		// The source or the target failed; running again resumes.
		log.Fatal(err)
	}
}

// A report lists the counts per type, then every document that was skipped
// and every remark about a record that was written.
func ExampleReport_String() {
	rep := migrate.Report{
		Users:              migrate.Counts{Read: 3, Written: 2, Skipped: 1},
		Subjects:           migrate.Counts{Read: 120, Written: 120},
		Links:              migrate.Counts{Read: 80, Written: 80},
		Audits:             migrate.Counts{Read: 950, Written: 950},
		DroppedResetTokens: 1,
		BootstrapMarked:    true,
		Skipped: []migrate.Problem{
			{Type: "user", ID: "5c7cf73e70796d676f000004", Reason: `username "alice@example.org" is already held by user 5c7cf72070796d676f000001`},
		},
		Notes: []migrate.Problem{
			{Type: "subject", ID: "5c7cf7a270796d676f00000e", Reason: `date_withdrawn was a BSON date; kept as the string "2019-05-01T00:00:00Z"`},
		},
	}
	fmt.Print(rep)
	fmt.Println("changed:", rep.Changed())
	// Output:
	// users:    3 read, 2 written, 0 existing, 1 skipped
	// subjects: 120 read, 120 written, 0 existing, 0 skipped
	// links:    80 read, 80 written, 0 existing, 0 skipped
	// audits:   950 read, 950 written, 0 existing, 0 skipped
	// other:    0 read, 0 written, 0 existing, 0 skipped
	// dropped reset tokens: 1
	// audit records about unknown documents: 0
	// bootstrap marker: set
	// skipped: 1
	//   user 5c7cf73e70796d676f000004: username "alice@example.org" is already held by user 5c7cf72070796d676f000001
	// notes: 1
	//   subject 5c7cf7a270796d676f00000e: date_withdrawn was a BSON date; kept as the string "2019-05-01T00:00:00Z"
	// changed: true
}
