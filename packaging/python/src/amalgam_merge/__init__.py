"""The `amalgam` command, installed from the `amalgam-merge` wheel.

The wheel carries the release binary in `bin/`; `amalgam` on the PATH replaces this Python process with it.
The binary is built for x86-64-v3 (clang's `haswell`: AVX2, FMA, F16C, BMI1/2, MOVBE); on a CPU without them
it would stop with an illegal instruction, so the launcher says so first.
"""
import os
import sys

_REQUIRED_FLAGS = ("avx2", "fma", "f16c", "bmi1", "bmi2", "movbe")


def _missing_cpu_flags():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [flag for flag in _REQUIRED_FLAGS if flag not in flags]
    except OSError:
        pass
    return []


def main():
    binary = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "amalgam")
    missing = _missing_cpu_flags()
    if missing:
        sys.stderr.write(
            "amalgam: this wheel's binary needs an x86-64-v3 CPU (AVX2, FMA, F16C, BMI1/2, MOVBE); "
            "this one lacks "
            + ", ".join(missing)
            + ". Build from source instead (see the README's two commands).\n"
        )
        sys.exit(1)
    os.execv(binary, [binary] + sys.argv[1:])
