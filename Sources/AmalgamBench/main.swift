print("amalgam-bench: no benchmarks yet")
