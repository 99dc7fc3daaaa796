// swift-tools-version:6.0
// The parallel-kernel tests under ThreadSanitizer (issue #24 part 5), at a cost CI can pay. Kept out of the main
// package like Fuzz/: it links only the floors that hold the parallel kernels (product `AmalgamKernels`: core,
// checkpoint, merge, models; no tokenizer, search, PostgreSQL client or TLS library), so its sanitized build is a
// fraction of the whole suite's. Its tests are the main suite's own test files, named one by one through
// `Amalgam` (a link to the repository root), in modules of the same names so they compile unchanged.
// Built and run by `scripts/check/tsan-kernels.sh` (`--sanitize=thread`, `TSAN_OPTIONS=halt_on_error=1`).
import Foundation
import PackageDescription

let kernels: Target.Dependency = .product(name: "AmalgamKernels", package: "Amalgam")

/// A target over some files of the main suite's folder `Tests/<folder>`; the folder's other files are excluded.
func suiteFiles(_ folder: String, _ files: [String], test: Bool = true) -> Target {
    let path = "Amalgam/Tests/" + folder
    let all = (try? FileManager.default.contentsOfDirectory(atPath: Context.packageDirectory + "/" + path)) ?? []
    let exclude = all.filter { !files.contains($0) }.sorted()
    let dependencies: [Target.Dependency] = test ? [kernels, "AmalgamTestSupport"] : [kernels]
    return test
        ? .testTarget(name: folder, dependencies: dependencies, path: path, exclude: exclude, sources: files)
        : .target(name: folder, dependencies: dependencies, path: path, exclude: exclude, sources: files)
}

let package = Package(
    name: "AmalgamTSan",
    dependencies: [.package(path: "Amalgam")],
    targets: [
        // The fixture paths and temporary folders (not RunFolders.swift, the one helper that needs AmalgamSearch).
        suiteFiles("AmalgamTestSupport", ["Fixtures.swift"], test: false),
        // parallelChunks and the thread team.
        suiteFiles("AmalgamCoreTests", ["ParallelTests.swift"]),
        // The merge executors (tensors and chunks on several threads; the same bytes at one thread and two), the
        // seeded sparsification drawn chunk by chunk, fused MoE experts read tensor by tensor across chunks, and
        // what these suites need from their neighbours.
        suiteFiles("AmalgamMergeTests", ["MergeTestSupport.swift", "ReferenceCases.swift", "ChunkedMergeTests.swift",
                                         "MergePipelineTests.swift", "SparsificationTests.swift", "MoEMergeTests.swift",
                                         "MultiChunkReferenceTests.swift"]),
        // Matrix products and attention at sizes that split over the threads, the backward kernels and losses.
        suiteFiles("AmalgamModelsTests", ["LossesTests.swift", "BackwardKernelTests.swift", "ThreadedKernelTests.swift"]),
    ]
)
