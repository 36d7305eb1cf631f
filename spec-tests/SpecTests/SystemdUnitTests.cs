using System.Diagnostics;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>A fact that runs only where systemd-analyze (Debian package <c>systemd</c>) is installed.</summary>
public sealed class FactWithSystemdAnalyzeAttribute : FactAttribute
{
    public FactWithSystemdAnalyzeAttribute()
    {
        if (SystemdUnitTests.SystemdAnalyze is null)
            Skip = "systemd-analyze is not installed (Debian package systemd): contrib/systemd/matrix-homeserver.service is not verified";
    }
}

/// <summary>The repository's systemd unit passes <c>systemd-analyze verify</c> without a single warning.</summary>
public sealed class SystemdUnitTests
{
    private const string InstalledBinary = "/opt/matrix-homeserver/Homeserver";

    public static string? SystemdAnalyze => new[] { "/usr/bin/systemd-analyze", "/bin/systemd-analyze" }.FirstOrDefault(File.Exists);

    [FactWithSystemdAnalyze]
    public async Task The_unit_verifies_cleanly()
    {
        var unit = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot.Find()!.FullName, "contrib", "systemd", "matrix-homeserver.service"));
        Assert.Contains($"ExecStart={InstalledBinary} --config /etc/matrix-homeserver/homeserver.yaml", unit);

        // verify checks that ExecStart's program exists: stand an executable in for the installed server.
        var dir = Directory.CreateTempSubdirectory("unit-").FullName;
        try
        {
            var standIn = Path.Combine(dir, "Homeserver");
            await File.WriteAllTextAsync(standIn, "#!/bin/sh\n");
            File.SetUnixFileMode(standIn, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
            var copy = Path.Combine(dir, "matrix-homeserver.service");
            await File.WriteAllTextAsync(copy, unit.Replace(InstalledBinary, standIn));

            var info = new ProcessStartInfo(SystemdAnalyze!, ["verify", copy]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(info)!;
            var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, output);
            // Unknown keys and sections are only warnings to verify: none may appear.
            Assert.True(output.Trim().Length == 0, output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
