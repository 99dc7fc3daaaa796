import AmalgamCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP exchange with the hub, synchronous, through Foundation's `URLSession` (libcurl on Linux).
/// Redirects are never followed here: the caller decides where the token may go.
struct HubHTTP {
    /// A response's status and headers (names lower-cased), and its body unless it went to a sink.
    struct Response {
        let status: Int
        let headers: [String: String]
        var body: [UInt8]
        subscript(header name: String) -> String? { headers[name.lowercased()] }
    }

    /// Why an exchange did not complete: the network, or the sink refusing the body.
    enum Failure: Error {
        case network(String)
        case sink(HubError)
    }

    /// Seconds without any byte from the server before an exchange fails.
    var idleTimeout: TimeInterval = 60

    /// Sends `method` to `url`. With a `sink`, the body of a 2xx response is handed over piece by piece
    /// (the response's status and headers come first, through `start`); without one it is collected.
    /// A broken transfer returns `.network` after what arrived was given to the sink.
    func send(_ method: String, _ url: URL, headers: [String: String], start: ((Response) throws(HubError) -> Void)? = nil,
              sink: ((UnsafeRawBufferPointer) throws(HubError) -> Void)? = nil) -> Result<Response, Failure> {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: idleTimeout)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let exchange = Exchange(start: start, sink: sink)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = idleTimeout
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        let session = URLSession(configuration: configuration, delegate: exchange, delegateQueue: nil)
        session.dataTask(with: request).resume()
        exchange.finished.wait()
        session.finishTasksAndInvalidate()
        return exchange.result()
    }

    /// The delegate of one exchange: it records the response and passes the body on as it arrives.
    private final class Exchange: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let finished = DispatchSemaphore(value: 0)
        private let lock = Lock()
        private let start: ((Response) throws(HubError) -> Void)?
        private let sink: ((UnsafeRawBufferPointer) throws(HubError) -> Void)?
        private var response: Response?
        private var sinkError: HubError?
        private var networkError: String?

        init(start: ((Response) throws(HubError) -> Void)?, sink: ((UnsafeRawBufferPointer) throws(HubError) -> Void)?) {
            self.start = start
            self.sink = sink
        }

        func result() -> Result<Response, Failure> {
            lock.withLock {
                if let sinkError { return .failure(.sink(sinkError)) }
                if let networkError { return .failure(.network(networkError)) }
                guard let response else { return .failure(.network("no response")) }
                return .success(response)
            }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
            completionHandler(nil)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
            guard let http = response as? HTTPURLResponse else {
                lock.withLock { networkError = "not an HTTP response" }
                completionHandler(.cancel)
                return
            }
            var headers: [String: String] = [:]
            for (name, value) in http.allHeaderFields { headers["\(name)".lowercased()] = "\(value)" }
            let r = Response(status: http.statusCode, headers: headers, body: [])
            lock.withLock { self.response = r }
            do throws(HubError) {
                try start?(r)
                completionHandler(.allow)
            } catch {
                lock.withLock { sinkError = error }
                completionHandler(.cancel)
            }
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            let status = lock.withLock { response?.status ?? 0 }
            if let sink, (200..<300).contains(status) {
                do {
                    try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in try sink(bytes) }
                } catch {
                    lock.withLock { sinkError = (error as? HubError) ?? .cache(path: "(download)", reason: "\(error)") }
                    dataTask.cancel()
                }
            } else {
                lock.withLock { response?.body.append(contentsOf: data.prefix(1 << 20)) }
            }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
            if let error {
                lock.withLock {
                    if sinkError == nil { networkError = (error as NSError).localizedDescription }
                }
            }
            finished.signal()
        }
    }
}
