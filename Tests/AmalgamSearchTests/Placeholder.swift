import Testing
import AmalgamSearch

@Test func searchModuleBuilds() {}
