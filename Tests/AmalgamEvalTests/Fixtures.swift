import AmalgamCore
import AmalgamEval
import Foundation

/// The repository's `fixtures/` folder, found from this source file.
let fixturesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("fixtures").path
}()

/// A tiny model folder made by `scripts/fixtures/make_model_fixtures.py`.
func modelFixture(_ name: String) -> String { fixturesDirectory + "/models/" + name }

/// `data/shakespeare/` (fetched by scripts/fetch-data.sh, not committed).
let shakespeareDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("data/shakespeare").path
}()
let shakespeareAvailable = FileManager.default.fileExists(atPath: shakespeareDirectory + "/milton/paradiselost.txt")

/// lm-evaluation-harness's own numbers (scripts/fixtures/make_eval_fixtures.py).
func lmEvalReference() throws -> JSONValue {
    try JSONValue.parse(String(contentsOfFile: fixturesDirectory + "/eval/lmeval_reference.json", encoding: .utf8))
}

/// A fresh empty folder under the system temp dir.
func temporaryDirectory(_ label: String) -> String {
    let path = NSTemporaryDirectory() + "amalgam-eval-\(label)-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// One token per character over a small alphabet, for the tiny fixture models (vocabulary 64): ids 3…52;
/// 1 is the prefix (BOS) token. Lets a test build the exact token sequences the evaluator must score.
struct CharacterTokenizer: TextTokenizer {
    static let alphabet = Array(" abcdefghijklmnopqrstuvwxyz0123456789.,?!#\n:+-=*/'")
    func tokenIds(_ text: String) -> [Int] { text.map { c in CharacterTokenizer.alphabet.firstIndex(of: c).map { $0 + 3 } ?? 63 } }
    func text(of ids: [Int]) -> String {
        String(ids.compactMap { $0 >= 3 && $0 - 3 < CharacterTokenizer.alphabet.count ? CharacterTokenizer.alphabet[$0 - 3] : nil })
    }
    var prefixTokenId: Int? { 1 }
}
