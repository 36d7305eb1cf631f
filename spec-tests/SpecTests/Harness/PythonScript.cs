using System.Diagnostics;

namespace Matrix.SpecTests.Harness;

/// <summary>Runs a script of spec-tests/python with Debian's interpreter (which has the python3-* packages the test command installs).</summary>
public static class PythonScript
{
    /// <summary>Debian's interpreter: a python3 earlier on the PATH may lack Debian's packages.</summary>
    private const string Python = "/usr/bin/python3";

    /// <summary>Fails the test unless the script exits 0; returns what it printed.</summary>
    public static async Task<string> RunAsync(string script, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var path = Path.Combine(NodeScenario.Directory(), "..", "python", script);
        var info = new ProcessStartInfo(Python, [path, .. arguments]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = await process.StandardOutput.ReadToEndAsync().WaitAsync(timeout);
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{script} failed (exit {process.ExitCode}):\n{stdout}\n{await stderr}");
        return stdout;
    }
}
