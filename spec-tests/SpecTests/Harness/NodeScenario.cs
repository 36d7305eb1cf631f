using System.Diagnostics;
using System.Text;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// Runs a real-client scenario script from spec-tests/js (matrix-js-sdk pinned in its package.json) and asserts that it
/// exits 0 having printed <c>OK</c> last. <paramref name="onLine"/> sees every line it prints, to act on requests such
/// as a restart.
/// </summary>
public static class NodeScenario
{
    public static string Directory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "spec-tests", "js", "package.json")))
                return Path.Combine(dir.FullName, "spec-tests", "js");
        throw new InvalidOperationException("spec-tests/js not found");
    }

    public static async Task<string> RunAsync(string script, string[] args, TimeSpan timeout, Func<string, StreamWriter, Task>? onLine = null)
    {
        var directory = Directory();
        Assert.True(System.IO.Directory.Exists(Path.Combine(directory, "node_modules", "matrix-js-sdk")),
            "matrix-js-sdk is not installed: run `npm ci` in spec-tests/js (the test command does)");
        var info = new ProcessStartInfo("node", [script, .. args])
        {
            WorkingDirectory = directory, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var node = Process.Start(info)!;
        var errors = new StringBuilder();
        node.ErrorDataReceived += (_, e) => { lock (errors) errors.AppendLine(e.Data); };
        node.BeginErrorReadLine();
        using var cancel = new CancellationTokenSource(timeout);
        var output = new StringBuilder();
        try
        {
            while (await node.StandardOutput.ReadLineAsync(cancel.Token) is { } line)
            {
                output.AppendLine(line);
                if (onLine is not null)
                    await onLine(line, node.StandardInput);
            }
            await node.WaitForExitAsync(cancel.Token);
        }
        finally
        {
            if (!node.HasExited)
                node.Kill(entireProcessTree: true);
        }
        string stderr;
        lock (errors) stderr = errors.ToString();
        Assert.True(node.ExitCode == 0, $"{script} failed (exit {node.ExitCode}):\n{output}\n{stderr}");
        Assert.EndsWith("OK", output.ToString().TrimEnd());
        return output.ToString();
    }
}
