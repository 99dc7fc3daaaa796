import CFuzzDriver
import Foundation

/// The fuzzer's bytes as a file, for parsers that read a path (safetensors, GGUF, config.json): written
/// once per input to one file per process under /dev/shm (memory) when it exists.
public enum FuzzInput {
    nonisolated(unsafe) private static var folder: String?

    /// The process's scratch folder the inputs are written to (made on first use).
    public static var scratchFolder: String {
        if let folder { return folder }
        let root = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = (root as NSString).appendingPathComponent("amalgam-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        folder = dir
        return dir
    }

    public static func withFile<R>(_ data: UnsafePointer<UInt8>, _ size: Int, name: String, _ body: (String) -> R) -> R {
        let path = (scratchFolder as NSString).appendingPathComponent(name)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0, "cannot write \(path)")
        var written = 0
        while written < size {
            let n = write(fd, data + written, size - written)
            precondition(n > 0, "cannot write \(path)")
            written += n
        }
        close(fd)
        return body(path)
    }

    /// The bytes as text, decoded as UTF-8 with replacement (as the file readers decode them).
    public static func text(_ data: UnsafePointer<UInt8>, _ size: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    }
}

/// Runs libFuzzer on `callback` with the program's arguments (see CFuzzDriver.h for why).
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
                      _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &arguments, callback)
}
