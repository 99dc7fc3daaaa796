import AmalgamCheckpoint
import AmalgamCore
import CAmalgamBLAS
import Foundation

extension LoRAExtraction {
    /// Where the extraction is, for a progress line.
    public struct Progress: Sendable {
        public let done: Int
        public let total: Int
        /// The module just finished (decomposed or saved).
        public let module: String
        /// Its result when it was decomposed.
        public let result: ModuleResult?
    }

    /// What was written.
    public struct Report: Sendable {
        public let modules: [ModuleResult]
        /// Modules whose rank `svEpsilon` cut to 0: not written (PEFT rejects r = 0).
        public let droppedModules: [String]
        public let savedModules: [String]
        /// The adapter's `r` (the largest rank written).
        public let rank: Int
    }

    /// Decomposes every planned module and writes the adapter folder (`adapter_config.json`,
    /// `adapter_model.safetensors`) atomically at `output`. One module's delta is in memory at a time;
    /// the factors (small) are kept until the file is written, whole modules are read from the fine-tuned
    /// model's mapped file as they are written.
    public func write(to output: String, overwrite: Bool, progress: (Progress) -> Void = { _ in }) throws(LoRAError) -> Report {
        let out: AtomicOutput
        do {
            out = try AtomicOutput(path: output, overwrite: overwrite)
            try out.makeWorkingDirectory()
        } catch { throw .extraction(reason: "\(output): \(error)") }
        do {
            let report = try writeAdapter(into: out.workingPath, progress: progress)
            try out.commit()
            return report
        } catch let error as LoRAError {
            out.abandon()
            throw error
        } catch {
            out.abandon()
            throw .extraction(reason: "\(output): \(error)")
        }
    }

    private func writeAdapter(into folder: String, progress: (Progress) -> Void) throws -> Report {
        var tensors: [(name: String, tensor: Tensor)] = []
        var results: [ModuleResult] = []
        var dropped: [String] = []
        let prefix = "base_model.model."
        for (i, item) in items.enumerated() {
            var result: ModuleResult?
            switch item.action {
            case .save:
                tensors.append((prefix + item.weight.name, try fineTuned.tensors.tensor(item.weight.name)))
                if let bias = item.bias { tensors.append((prefix + bias.name, try fineTuned.tensors.tensor(bias.name))) }
            case let .decompose(embedding):
                let (a, b, r) = try decompose(item, embedding: embedding)
                guard let a, let b else {
                    dropped.append(item.module)
                    break
                }
                result = r
                results.append(r)
                let kind = embedding ? (".lora_embedding_A", ".lora_embedding_B") : (".lora_A.weight", ".lora_B.weight")
                tensors.append((prefix + item.module + kind.0, a))
                tensors.append((prefix + item.module + kind.1, b))
                if let bias = item.bias, base.tensors.info(bias.name) != nil {
                    let ft = try fineTuned.tensors.tensor(bias.name).floats(), bs = try base.tensors.tensor(bias.name).floats()
                    tensors.append((prefix + item.module + ".lora_B.bias",
                                    Tensor(zip(ft, bs).map { $0 - $1 }, shape: bias.shape).converted(to: bias.dtype)))
                }
            }
            progress(Progress(done: i + 1, total: items.count, module: item.module, result: result))
        }
        guard let rank = results.map(\.rank).max() else {
            throw LoRAError.extraction(reason: "every module's rank was cut to 0 by --sv-epsilon \(options.svEpsilon); lower it")
        }
        try SafetensorsWriter.save(tensors, to: folder + "/adapter_model.safetensors")
        try writeFileAtomically(adapterConfig(rank: rank, results: results).pythonText(indent: 4, sortKeys: false) + "\n",
                                to: folder + "/adapter_config.json")
        return Report(modules: results, droppedModules: dropped, savedModules: modulesToSave, rank: rank)
    }

    /// The factors of one module's delta, or nil factors when its rank is cut to 0.
    private func decompose(_ item: Item, embedding: Bool) throws -> (Tensor?, Tensor?, ModuleResult) {
        let ft = try fineTuned.tensors.tensor(item.weight.name).floats()
        var delta = try base.tensors.tensor(item.weight.name).floats()
        for j in delta.indices { delta[j] = ft[j] - delta[j] }
        base.tensors.release(item.weight.name)
        fineTuned.tensors.release(item.weight.name)
        // M is Δ [out, in] for a linear layer and Δᵀ [hidden, vocab] for an embedding (mergekit transposes it).
        let (m, n) = embedding ? (item.weight.shape[1], item.weight.shape[0]) : (item.weight.shape[0], item.weight.shape[1])
        var settings = options.svd
        settings.seed = SeedDerivation.seed(run: options.svd.seed, tensor: item.weight.name)
        let svd = delta.withUnsafeBufferPointer {
            TruncatedSVD(values: $0, rows: m, columns: n, transposed: embedding, rank: min(options.maxRank, min(m, n)), settings: settings)
        }
        var r = svd.rank
        if options.svEpsilon > 0 { r = min(r, svd.s.filter { $0 > options.svEpsilon }.count) }
        guard r > 0 else { return (nil, nil, ModuleResult(module: item.module, rank: 0, relativeError: 1, exactSVD: svd.isExact)) }
        // A [r, n] = diag(√s)·Vᵀ (or diag(s)·Vᵀ); B [m, r] = U·diag(√s) (or U).
        var a = [Float](repeating: 0, count: r * n)
        var b = [Float](repeating: 0, count: m * r)
        for i in 0..<r {
            let (sa, sb) = options.distributeScale ? (svd.s[i].squareRoot(), svd.s[i].squareRoot()) : (svd.s[i], 1)
            for j in 0..<n { a[i * n + j] = Float(sa * svd.v[j + i * n]) }
            for j in 0..<m { b[j * r + i] = Float(sb * svd.u[j + i * m]) }
        }
        // ‖Δ − (B·A)ᵀ?‖ / ‖Δ‖, with the product laid out as Δ is stored.
        var residual = delta
        if embedding {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, Int32(n), Int32(m), Int32(r), -1, a, Int32(n), b, Int32(r), 1, &residual, Int32(m))
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(r), -1, b, Int32(r), a, Int32(n), 1, &residual, Int32(n))
        }
        let norm = delta.reduce(0.0) { $0 + Double($1) * Double($1) }
        let err = residual.reduce(0.0) { $0 + Double($1) * Double($1) }
        let dtype = item.weight.dtype
        return (Tensor(a, shape: [r, n]).converted(to: dtype), Tensor(b, shape: [m, r]).converted(to: dtype),
                ModuleResult(module: item.module, rank: r, relativeError: norm > 0 ? (err / norm).squareRoot() : 0, exactSVD: svd.isExact))
    }

    /// adapter_config.json with mergekit-extract-lora's keys and order; alpha = r everywhere, so the scale is 1.
    private func adapterConfig(rank: Int, results: [ModuleResult]) -> JSONValue {
        var targets: [String] = []
        for r in results {
            let last = r.module.split(separator: ".").last.map(String.init) ?? r.module
            if !targets.contains(last) { targets.append(last) }
        }
        var pattern = JSONObject()
        for r in results where r.rank != rank { pattern[r.module] = .int(r.rank) }
        return .object(JSONObject([
            ("base_model_name_or_path", .string(base.reference)),
            ("peft_type", .string("LORA")),
            ("use_rslora", .bool(false)),
            ("target_modules", .array(targets.map { .string($0) })),
            ("modules_to_save", .array(modulesToSave.map { .string($0) })),
            ("task_type", .string("CAUSAL_LM")),
            ("r", .int(rank)),
            ("lora_alpha", .int(rank)),
            ("rank_pattern", .object(pattern)),
            ("alpha_pattern", .object(pattern)),
            ("lora_dropout", .number("0.0")),
            ("fan_in_fan_out", .bool(false)),
            ("inference_mode", .bool(true)),
        ]))
    }
}
