import Foundation

/// Lays out a repository in a Hugging Face cache as `huggingface_hub` does: `blobs/<etag>`,
/// `snapshots/<commit>/<file>` as relative symlinks to the blobs, and `refs/<name>` holding the commit.
/// Returns the snapshot folder.
@discardableResult
public func makeCachedRepository(cache: String, repository: String, commit: String, files: [String: [UInt8]], refs: [String] = ["main"]) throws -> String {
    let storage = cache + "/models--" + repository.replacingOccurrences(of: "/", with: "--")
    let snapshot = storage + "/snapshots/" + commit
    let fm = FileManager.default
    try fm.createDirectory(atPath: storage + "/blobs", withIntermediateDirectories: true)
    for (name, bytes) in files.sorted(by: { $0.key < $1.key }) {
        let etag = String(format: "%08x", name.hashValue & 0xffff_ffff) + String(repeating: "0", count: 32) + String(format: "%08x", bytes.count)
        try Data(bytes).write(to: URL(fileURLWithPath: storage + "/blobs/" + etag))
        let pointer = snapshot + "/" + name
        try fm.createDirectory(atPath: (pointer as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let depth = name.split(separator: "/").count + 1
        try fm.createSymbolicLink(atPath: pointer, withDestinationPath: String(repeating: "../", count: depth) + "blobs/" + etag)
    }
    for ref in refs {
        let path = storage + "/refs/" + ref
        try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try commit.write(toFile: path, atomically: true, encoding: .utf8)
    }
    return snapshot
}

/// The bytes of each file of a fixture model folder, by name.
public func folderContents(_ folder: String) throws -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: folder) { files[name] = try fileBytes(folder + "/" + name) }
    return files
}
