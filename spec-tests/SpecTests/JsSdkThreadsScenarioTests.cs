using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// A real client: spec-tests/js/threads-scenario.mjs drives matrix-js-sdk (thread support on) through a thread with its
/// summary and /threads, an edit, reactions (a duplicate refused), a mention raising the highlight count until a read
/// receipt clears it, and a search that finds a shared message but not one from a room the searcher is not in.
/// </summary>
public abstract class JsSdkThreadsScenarioTests(string engine) : ServerFixture(engine)
{
    [Fact]
    public async Task Matrix_js_sdk_sees_threads_edits_reactions_counts_and_search()
    {
        var output = await NodeScenario.RunAsync("threads-scenario.mjs", [Server.BaseUrl], TimeSpan.FromMinutes(3));
        Assert.Contains("OK", output);
    }
}

public sealed class JsSdkThreadsScenarioTestsSqlite() : JsSdkThreadsScenarioTests("sqlite");
public sealed class JsSdkThreadsScenarioTestsPostgres() : JsSdkThreadsScenarioTests("postgres");
