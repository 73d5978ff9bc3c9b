package idm_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

// importCSV returns a CSV file of n subjects, S0000000 onwards.
func importCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("sssid,name,bday,email,site,date_consented,cohort\n")
	for i := range n {
		fmt.Fprintf(&b, "S%07d,Anna Muster %d,19%02d-%02d-%02d,p%d@example.org,site%d,2024-01-0%d,A\n",
			i, i, 40+i%60, 1+i%12, 1+i%28, i, i%5, 1+i%9)
	}
	return b.Bytes()
}

// BenchmarkImportBolt measures the import of CSV rows into a boltstore, as
// `idmd subject import` runs it; it reports rows/s. IDM_BENCH_IMPORT_ROWS
// sets the number of rows (default 20 000).
func BenchmarkImportBolt(b *testing.B) {
	rows := 20000
	if n, err := strconv.Atoi(os.Getenv("IDM_BENCH_IMPORT_ROWS")); err == nil && n > 0 {
		rows = n
	}
	file := importCSV(rows)
	admin := &idm.Principal{Username: "bench", Admin: true}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		s, err := boltstore.Open(filepath.Join(b.TempDir(), fmt.Sprintf("bench%d.db", i)))
		if err != nil {
			b.Fatal(err)
		}
		im, err := idm.NewImporter(idm.ImporterConfig{Store: s})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := im.Import(b.Context(), admin, bytes.NewReader(file), idm.ImportOptions{Format: idm.ImportCSV})
		if err != nil || res.Created != int64(rows) {
			b.Fatalf("import: %+v, %v", res, err)
		}
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
