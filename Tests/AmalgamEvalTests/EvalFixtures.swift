import AmalgamCore
import AmalgamEval
import AmalgamTestSupport
import Foundation

/// lm-evaluation-harness's own numbers (scripts/fixtures/make_eval_fixtures.py).
func lmEvalReference() throws -> JSONValue {
    try JSONValue.parse(String(contentsOfFile: fixturesDirectory + "/eval/lmeval_reference.json", encoding: .utf8))
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
