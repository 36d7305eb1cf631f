using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// A real client: spec-tests/js/chat-scenario.mjs drives matrix-js-sdk through a two-person chat of 100 messages,
/// typing, receipts, a redaction and a later joiner, while this test restarts the server (SIGKILL) halfway through.
/// </summary>
public abstract class JsSdkScenarioTests(string engine) : ServerFixture(engine)
{
    [Fact]
    public async Task Matrix_js_sdk_chat_survives_a_server_restart_without_losing_or_duplicating_messages()
    {
        var output = await NodeScenario.RunAsync("chat-scenario.mjs", [Server.BaseUrl], TimeSpan.FromMinutes(4), async (line, stdin) =>
        {
            if (line != "RESTART")
                return;
            await Server.KillAsync();
            await Server.StartAsync();
            await stdin.WriteLineAsync("RESTARTED");
            await stdin.FlushAsync();
        });
        Assert.Contains("RESTART", output);
    }
}

public sealed class JsSdkScenarioTestsSqlite() : JsSdkScenarioTests("sqlite");
public sealed class JsSdkScenarioTestsPostgres() : JsSdkScenarioTests("postgres");
