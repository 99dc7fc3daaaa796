import Foundation

/// The repository's `fixtures/` folder, found from this source file.
let fixturesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("fixtures").path
}()

/// A tiny model folder made by `scripts/fixtures/make_model_fixtures.py`.
func modelFixture(_ name: String) -> String { fixturesDirectory + "/models/" + name }
