using System.Diagnostics;
using System.Text;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// A real client: spec-tests/js/chat-scenario.mjs drives matrix-js-sdk (pinned in spec-tests/js/package.json) through a
/// two-person chat of 100 messages, typing, receipts, a redaction and a later joiner, while this test restarts the
/// server (SIGKILL) halfway through.
/// </summary>
public abstract class JsSdkScenarioTests(string engine) : ServerFixture(engine)
{
    private static string ScenarioDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "spec-tests", "js", "chat-scenario.mjs")))
                return Path.Combine(dir.FullName, "spec-tests", "js");
        throw new InvalidOperationException("spec-tests/js not found");
    }

    [Fact]
    public async Task Matrix_js_sdk_chat_survives_a_server_restart_without_losing_or_duplicating_messages()
    {
        var directory = ScenarioDirectory();
        Assert.True(Directory.Exists(Path.Combine(directory, "node_modules", "matrix-js-sdk")),
            "matrix-js-sdk is not installed: run `npm ci` in spec-tests/js (the test command does)");
        var info = new ProcessStartInfo("node", ["chat-scenario.mjs", Server.BaseUrl])
        {
            WorkingDirectory = directory, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var node = Process.Start(info)!;
        var errors = new StringBuilder();
        node.ErrorDataReceived += (_, e) => { lock (errors) errors.AppendLine(e.Data); };
        node.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var output = new StringBuilder();
        try
        {
            while (await node.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                output.AppendLine(line);
                if (line != "RESTART")
                    continue;
                await Server.KillAsync();
                await Server.StartAsync();
                await node.StandardInput.WriteLineAsync("RESTARTED");
                await node.StandardInput.FlushAsync();
            }
            await node.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!node.HasExited)
                node.Kill(entireProcessTree: true);
        }
        string stderr;
        lock (errors) stderr = errors.ToString();
        Assert.True(node.ExitCode == 0, $"scenario failed (exit {node.ExitCode}):\n{output}\n{stderr}");
        Assert.Contains("RESTART", output.ToString());
        Assert.EndsWith("OK", output.ToString().TrimEnd());
    }
}

public sealed class JsSdkScenarioTestsSqlite() : JsSdkScenarioTests("sqlite");
public sealed class JsSdkScenarioTestsPostgres() : JsSdkScenarioTests("postgres");
