import Foundation

/// The repository's `fixtures/` folder, found from this source file.
let fixturesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("fixtures").path
}()

/// scikit-learn's digits, committed as a fixture.
let digitsCSV = fixturesDirectory + "/digits/digits.csv"

/// The release's two pre-trained-seed starting vectors and jax's trained seeds (make_m2n2_release_seeds.py).
let releaseSeedsPath = fixturesDirectory + "/m2n2/release-seeds.safetensors"
