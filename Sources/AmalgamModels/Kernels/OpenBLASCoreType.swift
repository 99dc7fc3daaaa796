import CAmalgamBLAS
import Foundation

/// On AVX-512 machines OpenBLAS 0.3.21 takes the CPU for Haswell and runs its GEMM at about half speed
/// unless `OPENBLAS_CORETYPE=SKYLAKEX` is in the environment when the library loads — setting it later is
/// too late, so executables relaunch themselves with it (see `amalgam` and `amalgam-bench`). On CPUs
/// without AVX-512F (AVX2 only, such as the AVX2 + FMA machines Amalgam is developed and benchmarked on)
/// nothing is changed: those kernels would not run there.
public enum OpenBLASCoreType {
    /// The kernels this process's OpenBLAS runs (its core name, e.g. "Haswell", "SkylakeX"), which
    /// `OPENBLAS_CORETYPE` accepts: a child process given it computes with the very same kernels.
    public static var current: String { String(cString: openblas_get_corename()) }

    /// The core type to relaunch with: "SKYLAKEX" when the CPU has AVX-512F and the variable is unset.
    public static var recommendedRelaunch: String? {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              flags.split(separator: " ").contains("avx512f") else { return nil }
        return "SKYLAKEX"
    }
}
