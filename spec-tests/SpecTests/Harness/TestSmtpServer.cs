using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Matrix.SpecTests.Harness;

/// <summary>One mail the SMTP server received: envelope recipient, headers, and the decoded text body.</summary>
public sealed record ReceivedMail(string To, IReadOnlyDictionary<string, string> Headers, string Text)
{
    /// <summary>The first http(s) link in the body, as SyTest reads a validation mail.</summary>
    public string Link => Regex.Match(Text, @"https?://\S+").Value;
}

/// <summary>
/// A real SMTP server (Debian <c>python3-aiosmtpd</c>, spec-tests/python/smtp_sink.py) on a free loopback port, writing
/// the mail it accepts to a folder the tests read.
/// </summary>
public sealed class TestSmtpServer : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("smtp-").FullName;
    private Process? _process;

    public int Port { get; } = FreePorts.Next();

    public static async Task<TestSmtpServer> StartAsync()
    {
        var server = new TestSmtpServer();
        var script = Path.Combine(NodeScenario.Directory(), "..", "python", "smtp_sink.py");
        server._process = await ServiceProcess.StartAsync("/usr/bin/python3", [script, server.Port.ToString(), server._dir], server.Port, "aiosmtpd");
        return server;
    }

    /// <summary>Waits for the next mail to <paramref name="to"/> that has not been taken yet, and takes it.</summary>
    public async Task<ReceivedMail> WaitForMailAsync(string to, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            foreach (var file in Directory.GetFiles(_dir, "*.eml").Order())
            {
                var mail = Parse(await File.ReadAllTextAsync(file));
                if (mail.To.Equals(to, StringComparison.OrdinalIgnoreCase))
                {
                    File.Move(file, file + ".taken");
                    return mail;
                }
            }
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"no mail to {to} arrived");
            await Task.Delay(50);
        }
    }

    private static ReceivedMail Parse(string raw)
    {
        var split = raw.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in Regex.Split(raw[..split], "\r\n(?![ \t])"))
        {
            var colon = line.IndexOf(':');
            headers[line[..colon]] = line[(colon + 1)..].Trim();
        }
        var body = raw[(split + 4)..];
        Assert.Equal("base64", headers["Content-Transfer-Encoding"]);
        Assert.StartsWith("text/plain; charset=utf-8", headers["Content-Type"]);
        var text = Encoding.UTF8.GetString(Convert.FromBase64String(body.Replace("\r\n", "")));
        return new ReceivedMail(headers["X-Envelope-To"], headers, text);
    }

    public async ValueTask DisposeAsync()
    {
        await ServiceProcess.StopAsync(_process);
        Directory.Delete(_dir, recursive: true);
    }
}
