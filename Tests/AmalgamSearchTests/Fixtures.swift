import Foundation

/// The repository's `fixtures/` folder, found from this source file.
let fixturesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("fixtures").path
}()

/// scikit-learn's digits, committed as a fixture.
let digitsCSV = fixturesDirectory + "/digits/digits.csv"
