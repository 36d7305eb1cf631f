using System.Collections.Concurrent;
using System.Net;
using System.Security;
using System.Text;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// A CAS server (CAS protocol 3.0: <c>/login</c> issuing service tickets, <c>/proxyValidate</c> checking them) on
/// loopback. No CAS server is packaged for this machine (Debian has none; PyPI is out of reach), so the tests play the
/// protocol's server side themselves, strictly: tickets are single use and valid only for the service they were issued for.
/// </summary>
public sealed class TestCasServer : IAsyncDisposable
{
    private readonly LoopbackListener _listener;
    private readonly ConcurrentDictionary<string, (string Service, string User)> _tickets = new();
    private readonly ConcurrentDictionary<string, (string Password, Dictionary<string, string> Attributes)> _users = new();

    public string BaseUrl => $"{_listener.BaseUrl}/cas";

    public TestCasServer() => _listener = new LoopbackListener(HandleAsync);

    public void AddUser(string user, string password, Dictionary<string, string>? attributes = null) => _users[user] = (password, attributes ?? []);

    /// <summary>
    /// What a browser does at the CAS login page: posts the user's credentials for the service named in
    /// <paramref name="loginUrl"/>; the URL CAS sends the browser back to (the service, with its ticket).
    /// </summary>
    public async Task<string> SignInAsync(string loginUrl, string user, string password)
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var response = await http.PostAsync(loginUrl, new FormUrlEncodedContent(new Dictionary<string, string> { ["username"] = user, ["password"] = password }));
        if (response.StatusCode != HttpStatusCode.Redirect)
            throw new InvalidOperationException($"CAS refused the sign-in: {(int)response.StatusCode}");
        return response.Headers.Location!.ToString();
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        var query = context.Request.QueryString;
        var service = query["service"] ?? "";
        switch (context.Request.Url!.AbsolutePath)
        {
            case "/cas/login" when context.Request.HttpMethod == "POST":
            {
                var form = System.Web.HttpUtility.ParseQueryString(await new StreamReader(context.Request.InputStream).ReadToEndAsync());
                var user = form["username"] ?? "";
                if (service.Length == 0 || !_users.TryGetValue(user, out var account) || account.Password != form["password"])
                {
                    await RespondAsync(context, 401, "text/html", "<p>Wrong user name or password.</p>");
                    return;
                }
                var ticket = "ST-" + Guid.NewGuid().ToString("N");
                _tickets[ticket] = (service, user);
                context.Response.StatusCode = 302;
                context.Response.RedirectLocation = $"{service}{(service.Contains('?') ? '&' : '?')}ticket={ticket}";
                context.Response.Close();
                return;
            }
            case "/cas/login":
                await RespondAsync(context, 200, "text/html", "<form method=\"post\"><input name=\"username\"><input name=\"password\" type=\"password\"></form>");
                return;
            case "/cas/proxyValidate":
                await RespondAsync(context, 200, "application/xml", Validate(query["ticket"] ?? "", service));
                return;
            default:
                await RespondAsync(context, 404, "text/plain", "not found");
                return;
        }
    }

    private string Validate(string ticket, string service)
    {
        if (!_tickets.TryRemove(ticket, out var issued))
            return Failure("INVALID_TICKET", $"Ticket {ticket} not recognized");
        if (issued.Service != service)
            return Failure("INVALID_SERVICE", "Ticket was issued for another service");
        var attributes = string.Concat(_users[issued.User].Attributes.Select(a => $"<cas:{a.Key}>{SecurityElement.Escape(a.Value)}</cas:{a.Key}>"));
        return $"""
            <cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
              <cas:authenticationSuccess>
                <cas:user>{SecurityElement.Escape(issued.User)}</cas:user>
                <cas:attributes>{attributes}</cas:attributes>
              </cas:authenticationSuccess>
            </cas:serviceResponse>
            """;
    }

    private static string Failure(string code, string message) => $"""
        <cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
          <cas:authenticationFailure code="{code}">{SecurityElement.Escape(message)}</cas:authenticationFailure>
        </cas:serviceResponse>
        """;

    private static async Task RespondAsync(HttpListenerContext context, int status, string contentType, string body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(body));
        context.Response.Close();
    }

    public ValueTask DisposeAsync() => _listener.DisposeAsync();
}
