// swift-tools-version:6.0
// libFuzzer targets for every parser that reads a user's file (issue #24 part 1). Kept out of the main
// package: its normal `swift build` and the test build do not see this folder. Built and run by
// `scripts/check/fuzz.sh`, which passes `-sanitize=fuzzer,address -parse-as-library` (libFuzzer supplies
// `main`; each target exports `LLVMFuzzerTestOneInput`).
import PackageDescription

// `Amalgam` is a link to the repository root, so the dependency is named `amalgam` whatever the clone folder is called.
// The floors below search only (`AmalgamReaders`): the parsers live there, and the sanitizer build stays small.
let amalgam: Target.Dependency = .product(name: "AmalgamReaders", package: "Amalgam")
let fuzzTargets = ["FuzzJSON", "FuzzSafetensors", "FuzzGGUF", "FuzzMergeYAML", "FuzzConfigJSON",
                   "FuzzTokenizerJSON", "FuzzChatTemplate", "FuzzTaskFile", "FuzzAdapterConfig"]

let package = Package(
    name: "AmalgamFuzz",
    dependencies: [.package(path: "Amalgam")],
    targets: [.target(name: "CFuzzDriver"), .target(name: "FuzzSupport", dependencies: ["CFuzzDriver"])]
        + fuzzTargets.map { .executableTarget(name: $0, dependencies: [amalgam, "FuzzSupport"]) }
)
