import AmalgamCore
import Foundation

// The one copy of the test suite's fixture helpers: where the repository's fixtures and fetched data are,
// fresh temporary folders, the `amalgam` program of this build (Commands.swift), inputs that CI must have
// (RequiredInputs.swift) and the run-folder snapshot (RunFolders.swift, the one helper that needs
// AmalgamSearch). Every test target imports it; a test target still imports only the modules it tests.

/// The repository's root, found from this source file (Tests/AmalgamTestSupport/Fixtures.swift).
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The repository's `fixtures/` folder (committed; made by the scripts in scripts/fixtures/).
public let fixturesDirectory = repositoryRoot + "/fixtures"

/// A path inside `fixtures/`.
public func fixturePath(_ relativePath: String) -> String { fixturesDirectory + "/" + relativePath }

/// The bytes of a file.
public func fileBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

/// The bytes of a file inside `fixtures/`.
public func fixtureBytes(_ relativePath: String) throws -> [UInt8] { try fileBytes(fixturePath(relativePath)) }

/// A tiny model folder made by `scripts/fixtures/make_model_fixtures.py`.
public func modelFixture(_ name: String) -> String { fixturesDirectory + "/models/" + name }

/// scikit-learn's digits, committed as a fixture.
public let digitsCSV = fixturesDirectory + "/digits/digits.csv"

/// A fresh empty folder under the system temporary folder, its name made from `label` (the calling
/// function by default); the caller removes it.
public func temporaryFolder(_ label: String = #function) -> String {
    let name = String(label.filter { $0.isLetter || $0.isNumber || $0 == "-" }.prefix(60))
    let path = NSTemporaryDirectory() + "amalgam-test-\(name)-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// fixtures/safetensors, written by scripts/fixtures/make_safetensors_fixtures.py with the real libraries.
public let safetensorsFixtures = fixturesDirectory + "/safetensors"

/// fixtures/safetensors/values.json: what the reference libraries say each fixture holds.
public let referenceValues: JSONValue = {
    let data = try! Data(contentsOf: URL(fileURLWithPath: safetensorsFixtures + "/values.json"))
    return try! JSONValue.parse(Array(data))
}()
