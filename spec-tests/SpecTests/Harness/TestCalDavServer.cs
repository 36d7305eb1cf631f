using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// A private Radicale CalDAV server (Debian <c>radicale</c>, installed by the test command) on a free loopback port,
/// with its own storage and a user whose password is checked (htpasswd). Tests create calendars on it and change them
/// as another CalDAV client would; it can be stopped and started again (an outage).
/// </summary>
public sealed class TestCalDavServer : IAsyncDisposable
{
    public const string User = "alice";
    public const string Password = "alice calendar secret";
    private const string Radicale = "/usr/bin/radicale";

    private readonly string _dir = Directory.CreateTempSubdirectory("radicale-").FullName;
    private readonly HttpClient _http = new();
    private Process? _process;

    public int Port { get; } = FreePorts.Next();
    public string BaseUrl => $"http://127.0.0.1:{Port}";

    private TestCalDavServer()
    {
        File.WriteAllText(Path.Combine(_dir, "users"), $"{User}:{Password}\n");
        File.WriteAllText(Path.Combine(_dir, "config"), $"""
            [server]
            hosts = 127.0.0.1:{Port}
            [auth]
            type = htpasswd
            htpasswd_filename = {_dir}/users
            htpasswd_encryption = plain
            delay = 0
            [rights]
            type = owner_only
            [storage]
            filesystem_folder = {_dir}/collections
            [web]
            type = none
            [logging]
            level = warning
            """);
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{User}:{Password}")));
    }

    public static async Task<TestCalDavServer> StartAsync()
    {
        Assert.True(File.Exists(Radicale), "radicale is not installed: the test command installs Debian's radicale");
        var server = new TestCalDavServer();
        await server.StartAgainAsync();
        return server;
    }

    public async Task StartAgainAsync()
    {
        _process = await ServiceProcess.StartAsync(Radicale, ["-C", Path.Combine(_dir, "config")], Port, "radicale");
    }

    public async Task StopAsync()
    {
        await ServiceProcess.StopAsync(_process);
        _process = null;
    }

    /// <summary>Creates a calendar collection of the test user; returns its URL (without credentials).</summary>
    public async Task<string> CreateCalendarAsync(string name)
    {
        var url = $"{BaseUrl}/{User}/{name}/";
        using var response = await SendAsync(() => new HttpRequestMessage(new HttpMethod("MKCALENDAR"), url));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return url;
    }

    /// <summary>The calendar's URL with the test user's credentials in it, as a user pastes it into <c>!cal link</c>.</summary>
    public string WithCredentials(string url) => url.Replace("http://", $"http://{User}:{Uri.EscapeDataString(Password)}@");

    /// <summary>Writes an object as another CalDAV client would.</summary>
    public async Task PutAsync(string calendarUrl, string name, string ics)
    {
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Put, calendarUrl + name) { Content = new StringContent(ics, Encoding.UTF8, "text/calendar") });
        Assert.True(response.IsSuccessStatusCode, $"PUT {name}: {response.StatusCode}");
    }

    public async Task DeleteAsync(string calendarUrl, string name)
    {
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Delete, calendarUrl + name));
        Assert.True(response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.NotFound, $"DELETE {name}: {response.StatusCode}");
    }

    /// <summary>Every object's text in the calendar (read back through CalDAV).</summary>
    public async Task<List<string>> ObjectsAsync(string calendarUrl)
    {
        using var response = await SendAsync(() =>
        {
            var request = new HttpRequestMessage(new HttpMethod("REPORT"), calendarUrl)
            {
                Content = new StringContent("""
                    <?xml version="1.0" encoding="utf-8"?>
                    <C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
                      <D:prop><C:calendar-data/></D:prop>
                      <C:filter><C:comp-filter name="VCALENDAR"/></C:filter>
                    </C:calendar-query>
                    """, Encoding.UTF8, "application/xml"),
            };
            request.Headers.Add("Depth", "1");
            return request;
        });
        Assert.Equal(HttpStatusCode.MultiStatus, response.StatusCode);
        var xml = System.Xml.Linq.XDocument.Parse(await response.Content.ReadAsStringAsync());
        return xml.Descendants(System.Xml.Linq.XName.Get("calendar-data", "urn:ietf:params:xml:ns:caldav")).Select(e => e.Value).ToList();
    }

    /// <summary>
    /// Radicale's built-in server closes every connection, and a new one racing that close now and then ends without
    /// an answer: such a request is sent again (the bridge's CalDAV client does the same). As the test user, unless
    /// the request says otherwise.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> build)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await _http.SendAsync(build());
            }
            catch (HttpRequestException) when (attempt < 3)
            {
                await Task.Delay(50 * attempt);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>A clock the test moves by hand, for schedules (reminders, agendas, retries) without sleeping.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
    public void Advance(TimeSpan by) => Now += by;
}
