import AmalgamModels
import Foundation
import Testing

/// What `amalgam finetune` reads as training and held-out text.
@Suite struct TrainingTextTests {
    func write(_ text: String, _ name: String) throws -> (folder: String, path: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("amalgam-text-\(getpid())-\(name)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (folder, path)
    }

    @Test func aLanguageModelingTaskFileIsReadWithoutItsHeader() throws {
        let (folder, path) = try write("""
            {"task":"demo-lm","kind":"language_modeling","metadata":{"seed":1}}
            {"id":"a","split":"test","text":"First passage."}

            {"id":"b","split":"test","text":"Second passage."}
            """, "demo-lm.jsonl")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(try TrainingText.documents(at: path) == ["First passage.", "Second passage."])
    }

    @Test func plainTextLinesAreDocuments() throws {
        let (folder, path) = try write("{\"text\":\"one\"}\n{\"text\":\"two\"}\n", "plain.jsonl")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(try TrainingText.documents(at: path) == ["one", "two"])
    }

    @Test func aMultipleChoiceTaskFileIsRefusedNamingItsKind() throws {
        let (folder, path) = try write("""
            {"task":"demo-nextline","kind":"multiple_choice"}
            {"id":"a","context":"x","choices":["a","b"],"gold":0}
            """, "demo-nextline.jsonl")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect { try TrainingText.documents(at: path) } throws: { error in
            "\(error)".contains("demo-nextline.jsonl:1") && "\(error)".contains("multiple_choice")
        }
    }

    @Test func aLineWithoutTextNamesTheFileAndLine() throws {
        let (folder, path) = try write("{\"text\":\"one\"}\n{\"task\":\"late header\"}\n", "bad.jsonl")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect { try TrainingText.documents(at: path) } throws: { error in
            "\(error)".contains("bad.jsonl:2") && "\(error)".contains("\"text\"")
        }
    }
}
