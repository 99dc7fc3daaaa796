import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// SHA-256 streamed in pieces of any size gives FIPS 180-4's digests (the test vectors of its appendix and
/// of NIST's example set), and a file's digest equals its bytes' digest.
@Suite struct SHA256Tests {
    @Test func aMillionAsFedInUnevenPiecesGiveTheStandardDigest() {
        var hasher = SHA256()
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        var generator = SeededGenerator(seed: 11)
        var offset = 0
        while offset < message.count {
            let piece = min(message.count - offset, 1 + generator.integer(below: 200))
            message[offset..<(offset + piece)].withUnsafeBytes { hasher.update($0) }
            offset += piece
        }
        #expect(hasher.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func aMessageOfEveryLengthAroundTheBlockGivesTheSameDigestWholeAndInPieces() throws {
        var generator = SeededGenerator(seed: 12)
        for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000] {
            let message = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            var pieces = SHA256()
            for i in stride(from: 0, to: length, by: 7) { message[i..<min(length, i + 7)].withUnsafeBytes { pieces.update($0) } }
            #expect(pieces.hexDigest() == SHA256.hex(message), "length \(length)")
        }
        let two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        #expect(SHA256.hex(Array(two.utf8)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let path = temporaryFolder("sha256") + ".txt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try two.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(SHA256.hex(contentsOf: path) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(contentsOf: path + ".absent") == nil)
    }
}
