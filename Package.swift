// swift-tools-version:6.0
// Amalgam: merge neural networks (LLM checkpoints above all) on an ordinary CPU.
//
// Layers, dependencies pointing one way:
//   AmalgamCore (tensors, dtypes, kernels, JSON, mapped files)
//     -> AmalgamCheckpoint (safetensors, Hugging Face folders, GGUF)
//       -> AmalgamMerge (merge methods, mergekit YAML, streaming executor)
//         -> the `amalgam` command (AmalgamCLI), the only target that prints or exits.
import PackageDescription

let package = Package(
    name: "Amalgam",
    products: [
        .library(name: "Amalgam", targets: [
            "AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamJinja", "AmalgamTokenizer", "AmalgamModels", "AmalgamEval", "AmalgamSearch",
        ]),
        .executable(name: "amalgam", targets: ["AmalgamCLI"]),
        .executable(name: "amalgam-bench", targets: ["AmalgamBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CAmalgamBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "AmalgamCore", dependencies: ["CAmalgamBLAS"]),
        .target(name: "AmalgamCheckpoint", dependencies: ["AmalgamCore"]),
        .target(
            name: "AmalgamMerge",
            dependencies: ["AmalgamCore", "AmalgamCheckpoint", .product(name: "Yams", package: "Yams")]
        ),
        // The Jinja2 interpreter behind chat templates (lexer, parser, values, filters), apart from the tokenizer.
        .target(name: "AmalgamJinja", dependencies: ["AmalgamCore"]),
        .target(name: "AmalgamTokenizer", dependencies: ["AmalgamCore", "AmalgamJinja"]),
        .target(name: "AmalgamModels", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "CAmalgamBLAS"]),
        .target(name: "AmalgamEval", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamModels", "AmalgamTokenizer"]),
        .target(name: "AmalgamSearch", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamModels", "AmalgamTokenizer", "AmalgamEval", "CSQLite", .product(name: "Yams", package: "Yams")], exclude: ["Run/README.md"]),
        .executableTarget(
            name: "AmalgamCLI",
            dependencies: [
                "AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamTokenizer", "AmalgamModels", "AmalgamEval", "AmalgamSearch",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["BuildInfo"]
        ),
        // Names the git commit in `amalgam --version`.
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .executableTarget(
            name: "AmalgamBench",
            dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamTokenizer", "AmalgamModels", "AmalgamEval", "AmalgamSearch"]
        ),
        // The one copy of the tests' fixture helpers (paths, temporary folders, the amalgam program of this build).
        .target(name: "AmalgamTestSupport", dependencies: ["AmalgamCore", "AmalgamSearch"], path: "Tests/AmalgamTestSupport"),
        .testTarget(name: "AmalgamCoreTests", dependencies: ["AmalgamCore", "AmalgamTestSupport"]),
        .testTarget(name: "AmalgamCheckpointTests", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamTestSupport"]),
        .testTarget(name: "AmalgamMergeTests", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamTestSupport"]),
        .testTarget(name: "AmalgamJinjaTests", dependencies: ["AmalgamCore", "AmalgamJinja"]),
        .testTarget(name: "AmalgamTokenizerTests", dependencies: ["AmalgamCore", "AmalgamTokenizer", "AmalgamTestSupport"]),
        .testTarget(name: "AmalgamModelsTests", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamModels", "AmalgamTestSupport"]),
        .testTarget(name: "AmalgamEvalTests", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamModels", "AmalgamTokenizer", "AmalgamEval", "AmalgamTestSupport"]),
        .testTarget(name: "AmalgamSearchTests", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamModels", "AmalgamTokenizer", "AmalgamEval", "AmalgamSearch", "AmalgamTestSupport"]),
        // Every test that runs the `amalgam` program (the one built next to the test bundle), as a user would.
        .testTarget(name: "AmalgamCLITests", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamModels", "AmalgamTokenizer", "AmalgamEval", "AmalgamSearch", "AmalgamTestSupport"]),
    ]
)
