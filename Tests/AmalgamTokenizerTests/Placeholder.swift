import Testing
import AmalgamTokenizer

@Test func tokenizerModuleBuilds() {}
