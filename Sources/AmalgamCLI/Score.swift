import AmalgamCheckpoint
import AmalgamCore
import AmalgamModels
import ArgumentParser
import Foundation

/// `amalgam score MODEL --ids-file F`: log-likelihood and perplexity of token sequences.
struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score token sequences with a model: per-sequence log-likelihood, token count, perplexity."
    )

    @Argument(help: "A model folder (config.json and safetensors), a .safetensors file or a Llama .gguf file.")
    var model: String

    @Option(help: "A file with one JSON array of token ids per line.")
    var idsFile: String

    @Option(help: "Also write the logits [batch, max length, vocab] (F32, zero past each sequence's end), input_ids and attention_mask to this .safetensors file.")
    var dumpLogits: String?

    @Option(help: "Tokens per forward pass: consecutive sequences are batched up to this many (bounds memory).")
    var tokensPerPass = 4096

    @OptionGroup var weightsOption: WeightsOption

    @Flag(help: "Print JSON lines instead of a table.")
    var json = false

    func run() throws {
        relaunchWithOpenBLASCoreTypeIfNeeded()
        let text = try String(contentsOfFile: idsFile, encoding: .utf8)
        var sequences: [[Int]] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            sequences.append(try parseTokenIds(String(line), what: "\(idsFile):\(n + 1)"))
        }
        guard !sequences.isEmpty else { throw CLIInputError("\(idsFile): no sequences (one JSON array of ids per line)") }
        let lm = try LlamaModel(source: ModelSource.open(model), precision: weightsOption.precision)
        let batch = try TokenBatch(sequences)
        let scores = try lm.score(sequences, tokensPerPass: tokensPerPass)
        var totalLogLikelihood = 0.0, totalTokens = 0
        if !json { print("sequence\ttokens\tlog_likelihood\tperplexity") }
        for (i, s) in scores.enumerated() {
            totalLogLikelihood += s.logLikelihood
            totalTokens += s.tokenCount
            if json {
                print("{\"sequence\": \(i), \"tokens\": \(s.tokenCount), \"log_likelihood\": \(s.logLikelihood), \"perplexity\": \(s.perplexity)}")
            } else {
                print("\(i)\t\(s.tokenCount)\t\(String(format: "%.4f", s.logLikelihood))\t\(String(format: "%.4f", s.perplexity))")
            }
        }
        if !json && scores.count > 1 {
            print("all\t\(totalTokens)\t\(String(format: "%.4f", totalLogLikelihood))\t\(String(format: "%.4f", exp(-totalLogLikelihood / Double(max(totalTokens, 1)))))")
        }
        if let dumpLogits { try dump(lm.logits(batch), batch: batch, vocab: lm.outputCount, to: dumpLogits) }
    }

    /// Writes logits padded to [B, T, V] with input_ids and attention_mask, as transformers lays them out.
    func dump(_ logits: Matrix, batch: TokenBatch, vocab: Int, to path: String) throws {
        let B = batch.sequences.count, T = batch.sequences.map(\.count).max()!
        let padded = Tensor(zeros: .f32, shape: [B, T, vocab])
        let ids = Tensor(zeros: .i64, shape: [B, T]), mask = Tensor(zeros: .i64, shape: [B, T])
        let out = padded.storage.mutableBase!.assumingMemoryBound(to: Float.self)
        let idOut = ids.storage.mutableBase!.assumingMemoryBound(to: Int64.self)
        let maskOut = mask.storage.mutableBase!.assumingMemoryBound(to: Int64.self)
        for (b, s) in batch.sequences.enumerated() {
            for t in 0..<s.count {
                idOut[b * T + t] = Int64(s[t])
                maskOut[b * T + t] = 1
                let row = logits[row: batch.offsets[b] + t]
                row.withUnsafeBufferPointer { (out + (b * T + t) * vocab).update(from: $0.baseAddress!, count: vocab) }
            }
        }
        try SafetensorsWriter.save([("logits", padded), ("input_ids", ids), ("attention_mask", mask)], to: path)
    }
}
