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

/// <summary>
/// Runs alone, after the parallel classes: matrix-js-sdk (thread support on) throws when the sync's copy of a thread
/// reply reaches it before the send's answer, which a server may deliver in either order and a machine loaded by the
/// other test classes makes likely.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ThreadedClientScenarios
{
    public const string Name = "threaded client scenarios";
}

[Collection(ThreadedClientScenarios.Name)]
public sealed class JsSdkThreadsScenarioTestsSqlite() : JsSdkThreadsScenarioTests("sqlite");

[Collection(ThreadedClientScenarios.Name)]
public sealed class JsSdkThreadsScenarioTestsPostgres() : JsSdkThreadsScenarioTests("postgres");
