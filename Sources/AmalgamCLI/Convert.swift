import AmalgamCheckpoint
import AmalgamCore
import ArgumentParser
import Foundation

/// `amalgam convert IN OUT`: a Llama GGUF to a Hugging Face folder, or a folder to a GGUF file.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a Llama model between GGUF and a Hugging Face folder (direction from the input).",
        discussion: """
            amalgam convert model.gguf OUT_DIR [--dtype bf16|f16|f32]     GGUF -> Hugging Face folder
            amalgam convert MODEL_DIR out.gguf [--type f32|f16|bf16|q8_0]  Hugging Face folder -> GGUF
            """
    )

    @Argument(help: "A .gguf file or a Hugging Face model folder.")
    var input: String

    @Argument(help: "The output folder (from a GGUF) or .gguf file (from a folder).")
    var output: String

    @Option(help: "Weight dtype of the Hugging Face output: bf16, f16 or f32.")
    var dtype: String = "bf16"

    @Option(help: "Tensor type of the GGUF output: f32, f16, bf16 or q8_0 (vectors stay f32).")
    var type: String = "f16"

    @Option(help: "general.name of the GGUF output (default: the folder's name).")
    var name: String?

    @Flag(help: "Replace the output if it exists.")
    var overwrite = false

    var fromGGUF: Bool { input.lowercased().hasSuffix(".gguf") }

    func validate() throws {
        if fromGGUF {
            guard let d = DType(torchName: dtype), [.bf16, .f16, .f32].contains(d) else {
                throw ValidationError("--dtype must be bf16, f16 or f32 (got '\(dtype)')")
            }
        } else {
            guard let t = GGMLType(name: type), t.canQuantize else {
                throw ValidationError("--type must be f32, f16, bf16 or q8_0 (got '\(type)')")
            }
            guard output.lowercased().hasSuffix(".gguf") else {
                throw ValidationError("the output of a folder conversion must be a .gguf file (got '\(output)')")
            }
        }
    }

    func run() throws {
        let start = Date()
        if fromGGUF {
            try GGUFLlamaConvert.toHuggingFace(gguf: input, output: output, dtype: DType(torchName: dtype)!, overwrite: overwrite)
        } else {
            try GGUFLlamaConvert.toGGUF(folder: input, output: output, type: GGMLType(name: type)!, name: name,
                                        preTokenizer: try llamaCppPreTokenizer(folder: input), overwrite: overwrite)
        }
        print("wrote \(output) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
    }
}
