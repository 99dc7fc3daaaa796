import Testing
@testable import AmalgamCore

@Test func placeholderB() {
    #expect(BFloat16.bits(from: 1.0) == 0x3F80)
}
