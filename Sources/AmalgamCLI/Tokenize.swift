import AmalgamCheckpoint
import AmalgamEval
import AmalgamTokenizer
import ArgumentParser
import Foundation

/// `amalgam tokenize MODEL_OR_TOKENIZER`: the token ids of each input line, as Hugging Face tokenizers gives them.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of each input line, one JSON array per line.",
        discussion: "Each line is encoded without its line break (\\n or \\r\\n), with the model's special tokens unless --no-special."
    )

    @Argument(help: "A model folder holding tokenizer.json (and tokenizer_config.json), a tokenizer.json file, or a .gguf or .safetensors model.")
    var modelOrTokenizer: String

    @Option(name: .customLong("text-file"), help: "Read the lines from this file instead of standard input.")
    var textFile: String?

    @Flag(name: .customLong("no-special"), help: "Do not add the special tokens of the post-processor (BOS/EOS).")
    var noSpecial = false

    func run() throws {
        let lower = modelOrTokenizer.lowercased()
        let tokenizer = lower.hasSuffix(".gguf") || lower.hasSuffix(".safetensors")
            ? try LanguageModel.tokenizer(of: ModelSource.open(modelOrTokenizer)) : try Tokenizer(contentsOf: resolveModelArgument(modelOrTokenizer))
        let input: Data
        if let textFile {
            guard let data = FileManager.default.contents(atPath: textFile) else {
                throw ValidationError("cannot read --text-file \(textFile): no such file or not readable")
            }
            input = data
        } else {
            input = FileHandle.standardInput.readDataToEndOfFile()
        }
        // Bytes, not Characters: "\r\n" is one Character in Swift.
        var lines = input.split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { String(decoding: $0.last == 0x0D ? $0.dropLast() : $0, as: UTF8.self) }
        if lines.last == "" { lines.removeLast() }  // the break ending the last line does not start another
        var out = ""
        for ids in tokenizer.encodeBatch(lines, addSpecialTokens: !noSpecial) {
            out += "[" + ids.map(String.init).joined(separator: ",") + "]\n"
            if out.utf8.count > 1 << 16 { FileHandle.standardOutput.write(Data(out.utf8)); out = "" }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
