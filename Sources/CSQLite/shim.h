// The system SQLite (Debian: libsqlite3-dev), for run folders' databases.
#include <sqlite3.h>
