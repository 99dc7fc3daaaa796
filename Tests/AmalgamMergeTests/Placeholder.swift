import Testing
import AmalgamMerge

@Test func mergeModuleBuilds() {}
