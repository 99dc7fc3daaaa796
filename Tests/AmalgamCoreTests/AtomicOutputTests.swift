import AmalgamCore
import AmalgamTestSupport
import Foundation
import Testing

/// A fresh empty folder under the system temporary folder.
struct AtomicOutputTests {
    let fm = FileManager.default

    @Test func aFolderAppearsOnlyWhenCommitted() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        let out = try AtomicOutput(path: dir + "/merged", overwrite: false)
        try out.makeWorkingDirectory()
        try writeFileAtomically("hello", to: out.workingPath + "/a.txt")
        #expect(!fm.fileExists(atPath: dir + "/merged"))
        try out.commit()
        #expect(try String(contentsOfFile: dir + "/merged/a.txt", encoding: .utf8) == "hello")
        #expect(!fm.fileExists(atPath: out.workingPath))
    }

    @Test func anExistingOutputIsRefusedUnlessOverwriting() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        try writeFileAtomically("old", to: dir + "/out")
        #expect(throws: FileError.alreadyExists(path: dir + "/out")) { _ = try AtomicOutput(path: dir + "/out", overwrite: false) }
        #expect(FileError.alreadyExists(path: "x").description.contains("--overwrite"))
    }

    @Test func overwritingReplacesAFolderWhole() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        try fm.createDirectory(atPath: dir + "/m", withIntermediateDirectories: true)
        try writeFileAtomically("stale", to: dir + "/m/stale.txt")
        let out = try AtomicOutput(path: dir + "/m", overwrite: true)
        try out.makeWorkingDirectory()
        try writeFileAtomically("new", to: out.workingPath + "/new.txt")
        try out.commit()
        #expect(try fm.contentsOfDirectory(atPath: dir + "/m") == ["new.txt"])
        #expect(try fm.contentsOfDirectory(atPath: dir).sorted() == ["m"])
    }

    @Test func abandoningLeavesNothing() throws {
        let dir = temporaryFolder()
        defer { try? fm.removeItem(atPath: dir) }
        let out = try AtomicOutput(path: dir + "/x", overwrite: false)
        try out.makeWorkingDirectory()
        out.abandon()
        #expect(try fm.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func writingIntoAMissingFolderNamesThePath() {
        #expect {
            try writeFileAtomically("x", to: "/nonexistent-amalgam-folder/f.json")
        } throws: { error in
            (error as? FileError)?.description.contains("/nonexistent-amalgam-folder/f.json") == true
        }
    }
}

struct MappedFileTests {
    @Test func mapsAFileAndItsRanges() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeFileAtomically(Array(0..<200).map { UInt8($0) }, to: dir + "/f")
        let f = try MappedFile(path: dir + "/f")
        #expect(f.count == 200)
        #expect(Array(f.bytes(offset: 10, count: 3)) == [10, 11, 12])
        #expect(f.bytes(offset: 200, count: 0).count == 0)
        f.willRead(offset: 5, count: 100)
        f.doneReading(offset: 5, count: 100)
        #expect(Array(f.bytes(offset: 199, count: 1)) == [199])  // still readable after DONTNEED
    }

    @Test func emptyFilesFoldersAndMissingFiles() throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeFileAtomically([UInt8](), to: dir + "/empty")
        let empty = try MappedFile(path: dir + "/empty")
        #expect(empty.count == 0 && empty.base == nil)
        #expect(throws: FileError.isDirectory(path: dir)) { _ = try MappedFile(path: dir) }
        #expect {
            _ = try MappedFile(path: dir + "/missing")
        } throws: { error in
            (error as? FileError)?.description.contains(dir + "/missing") == true
        }
    }
}
