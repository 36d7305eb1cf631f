using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// A real sliding-sync client: spec-tests/js/sliding-sync-scenario.mjs drives matrix-js-sdk's <c>SlidingSync</c> (simplified
/// sliding sync with its extensions) with Rust crypto beside a /sync client: the room list by activity, an invite joined
/// through it, encrypted messages decrypted both ways, a room subscription with history, a room moving up the list.
/// </summary>
public abstract class JsSdkSlidingSyncScenarioTests(string engine) : ServerFixture(engine)
{
    [Fact]
    public async Task Matrix_js_sdk_sliding_sync_lists_rooms_and_chats_encrypted_with_a_sync_client()
    {
        var output = await NodeScenario.RunAsync("sliding-sync-scenario.mjs", [Server.BaseUrl], TimeSpan.FromMinutes(3));
        Assert.Contains("OK", output);
    }
}

public sealed class JsSdkSlidingSyncScenarioTestsSqlite() : JsSdkSlidingSyncScenarioTests("sqlite");
public sealed class JsSdkSlidingSyncScenarioTestsPostgres() : JsSdkSlidingSyncScenarioTests("postgres");
