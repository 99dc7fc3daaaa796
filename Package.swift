// swift-tools-version:6.0
// Amalgam: merge neural networks (LLM checkpoints above all) on an ordinary CPU.
//
// Layers, dependencies pointing one way:
//   AmalgamCore (tensors, dtypes, kernels, JSON, mapped files, seeded generator)
//     -> AmalgamCheckpoint (safetensors, Hugging Face folders, GGUF); AmalgamJinja (the chat-template interpreter)
//       -> AmalgamMerge (merge methods, mergekit YAML, streaming executor) / AmalgamModels (the engine)
//          / AmalgamTokenizer (tokenizer.json pipelines, chat templates; uses AmalgamJinja)
//         -> AmalgamEval (tasks, scoring)
//           -> AmalgamSearch (algorithms: M2N2, CMA-ES, DAM, evolve, the run store)
//             -> AmalgamLab (the reproductions `amalgam experiment` runs: digits MLP, test functions);
//                AmalgamReport (`amalgam report`: runs and eval records as one HTML page)
//               -> the `amalgam` command (AmalgamCLI), the only target that prints or exits.
import PackageDescription

let package = Package(
    name: "Amalgam",
    products: [
        .library(name: "Amalgam", targets: [
            "AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamJinja", "AmalgamTokenizer", "AmalgamModels", "AmalgamEval", "AmalgamSearch", "AmalgamLab", "AmalgamReport", "AmalgamJobs",
        ]),
        // The floors below search, which hold every reader of a user's file: the fuzz package (Fuzz/) links only
        // these, so its sanitizer build leaves out the PostgreSQL client and the TLS library under it.
        .library(name: "AmalgamReaders", targets: [
            "AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamJinja", "AmalgamTokenizer", "AmalgamModels", "AmalgamEval",
        ]),
        // The floors that hold the parallel kernels (parallel chunks and the thread team, GGUF (de)quantization,
        // the merge executors, matmul and attention): the ThreadSanitizer package (TSan/) links only these.
        .library(name: "AmalgamKernels", targets: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamModels"]),
        .executable(name: "amalgam", targets: ["AmalgamCLI"]),
        .executable(name: "amalgam-bench", targets: ["AmalgamBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The PostgreSQL run store (issue #21): many processes sharing one search.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CAmalgamBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "AmalgamCore", dependencies: ["CAmalgamBLAS", .product(name: "Yams", package: "Yams")]),
        .target(name: "AmalgamCheckpoint", dependencies: ["AmalgamCore", "CAmalgamBLAS"]),
        .target(
            name: "AmalgamMerge",
            dependencies: ["AmalgamCore", "AmalgamCheckpoint", "CAmalgamBLAS"]
        ),
        // The Jinja2 interpreter behind chat templates (lexer, parser, values, filters), apart from the tokenizer.
        .target(name: "AmalgamJinja", dependencies: ["AmalgamCore"]),
        .target(name: "AmalgamTokenizer", dependencies: ["AmalgamCore", "AmalgamJinja"]),
        .target(name: "AmalgamModels", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "CAmalgamBLAS"]),
        .target(name: "AmalgamEval", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamModels", "AmalgamTokenizer", "CAmalgamBLAS"]),
        .target(name: "AmalgamSearch", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamModels", "AmalgamTokenizer", "AmalgamEval", "CSQLite", .product(name: "PostgresNIO", package: "postgres-nio")], exclude: ["Run/README.md"]),
        // The published reproductions run by `amalgam experiment`: the digits MLP, M2N2 and DAM on digits,
        // digits merge recipes, CMA-ES test functions. Nothing below depends on it.
        .target(name: "AmalgamLab", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamModels", "AmalgamSearch", "CAmalgamBLAS"]),
        // The jobs the command runs, each a library type that opens its inputs, runs, checkpoints and resumes,
        // and reports through events the command renders (fine-tuning so far; issue #18 part 6).
        .target(name: "AmalgamJobs", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamModels", "AmalgamEval", "AmalgamSearch"]),
        // `amalgam report`: run folders and eval records read through the run store, drawn as one HTML page (inline SVG).
        .target(name: "AmalgamReport", dependencies: ["AmalgamCore", "AmalgamEval", "AmalgamSearch"]),
        .executableTarget(
            name: "AmalgamCLI",
            dependencies: [
                "AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamTokenizer", "AmalgamModels", "AmalgamEval", "AmalgamSearch", "AmalgamLab", "AmalgamReport", "AmalgamJobs",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["BuildInfo"]
        ),
        // Names the git commit in `amalgam --version`.
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .executableTarget(
            name: "AmalgamBench",
            dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamTokenizer", "AmalgamModels", "AmalgamEval", "AmalgamSearch", "AmalgamLab"]
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
        .testTarget(name: "AmalgamSearchTests", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamModels", "AmalgamTokenizer", "AmalgamEval", "AmalgamSearch", "AmalgamLab", "AmalgamTestSupport"]),
        .testTarget(name: "AmalgamLabTests", dependencies: ["AmalgamCore", "AmalgamModels", "AmalgamSearch", "AmalgamLab", "AmalgamTestSupport"]),
        // Every test that runs the `amalgam` program (the one built next to the test bundle), as a user would.
        .testTarget(name: "AmalgamCLITests", dependencies: ["AmalgamCore", "AmalgamCheckpoint", "AmalgamMerge", "AmalgamModels", "AmalgamTokenizer", "AmalgamEval", "AmalgamSearch", "AmalgamLab", "AmalgamTestSupport"]),
    ]
)
