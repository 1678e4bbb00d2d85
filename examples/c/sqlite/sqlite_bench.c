/* A SQL workload over SQLite's bytecode interpreter (the VDBE): an
   in-memory database, inserts in a transaction, an index, joins,
   aggregates, string functions and updates. Prints checksums of every
   result, so any engine's output can be compared with a native run.
   Usage: sqlite_bench [ROWS] */
#include <stdio.h>
#include <stdlib.h>
#include "sqlite3.h"

static unsigned long long digest = 1469598103934665603ULL;

static int fold(void *unused, int columns, char **values, char **names) {
  (void)unused;
  (void)names;
  for (int c = 0; c < columns; c++) {
    const char *v = values[c] ? values[c] : "NULL";
    for (; *v; v++) digest = (digest ^ (unsigned char)*v) * 1099511628211ULL;
    digest = (digest ^ '|') * 1099511628211ULL;
  }
  return 0;
}

static void exec(sqlite3 *db, const char *sql) {
  char *error = 0;
  if (sqlite3_exec(db, sql, fold, 0, &error) != SQLITE_OK) {
    fprintf(stderr, "sql error: %s\n  in: %s\n", error, sql);
    exit(1);
  }
}

static void report(sqlite3 *db, const char *label, const char *sql) {
  digest = 1469598103934665603ULL;
  exec(db, sql);
  printf("%-10s %016llx\n", label, digest);
}

int main(int argc, char **argv) {
  int rows = argc > 1 ? atoi(argv[1]) : 2000;
  sqlite3 *db;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
    fprintf(stderr, "cannot open an in-memory database\n");
    return 1;
  }
  exec(db, "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, price REAL,"
           " qty INTEGER, category INTEGER)");
  exec(db, "CREATE TABLE category(id INTEGER PRIMARY KEY, label TEXT)");
  exec(db, "BEGIN");
  sqlite3_stmt *insert;
  sqlite3_prepare_v2(db, "INSERT INTO item(name, price, qty, category) VALUES (?, ?, ?, ?)",
                     -1, &insert, 0);
  unsigned state = 12345;
  for (int i = 0; i < rows; i++) {
    char name[32];
    state = state * 1103515245u + 12345u;
    snprintf(name, sizeof name, "item-%u-%d", (state >> 8) % 9973, i);
    sqlite3_bind_text(insert, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(insert, 2, (double)((state >> 4) % 100000) / 100.0);
    sqlite3_bind_int(insert, 3, (int)((state >> 12) % 500));
    sqlite3_bind_int(insert, 4, (int)((state >> 20) % 40));
    sqlite3_step(insert);
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  for (int c = 0; c < 40; c++) {
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO category VALUES (%d, 'category %c%d')", c,
             'A' + c % 26, c);
    exec(db, sql);
  }
  exec(db, "COMMIT");
  exec(db, "CREATE INDEX item_category ON item(category, price)");

  report(db, "count", "SELECT count(*), sum(qty), round(avg(price), 4) FROM item");
  report(db, "group",
         "SELECT c.label, count(*), round(sum(i.price * i.qty), 2), max(i.name)"
         " FROM item i JOIN category c ON c.id = i.category"
         " GROUP BY c.label ORDER BY 3 DESC");
  report(db, "range",
         "SELECT id, name, price FROM item WHERE category = 7 AND price BETWEEN 100 AND 400"
         " ORDER BY price, id");
  report(db, "strings",
         "SELECT upper(substr(name, 1, 8)) || '-' || length(name), replace(name, '-', '+')"
         " FROM item WHERE name LIKE '%7%' ORDER BY name LIMIT 500");
  report(db, "window",
         "SELECT id, sum(qty) OVER (PARTITION BY category ORDER BY id ROWS 3 PRECEDING)"
         " FROM item ORDER BY id");
  exec(db, "UPDATE item SET price = price * 1.1 WHERE qty % 3 = 0");
  exec(db, "DELETE FROM item WHERE qty < 25");
  report(db, "after",
         "SELECT category, count(*), round(total(price), 3) FROM item"
         " GROUP BY category HAVING count(*) > 1 ORDER BY category");
  report(db, "distinct", "SELECT count(DISTINCT qty), count(DISTINCT substr(name, 6, 3)) FROM item");
  sqlite3_close(db);
  return 0;
}
