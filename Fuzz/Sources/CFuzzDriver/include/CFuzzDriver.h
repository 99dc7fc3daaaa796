#include <stddef.h>
#include <stdint.h>

// libFuzzer's entry point for programs that have their own `main`. SwiftPM links an executable with its
// `main` renamed to TARGET_main, so each fuzz target defines that and hands over to libFuzzer here.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
