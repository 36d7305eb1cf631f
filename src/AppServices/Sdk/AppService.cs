using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.AppServices.Registration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Matrix.AppServices.Sdk;

/// <summary>
/// The service side of the application-service API: serves <c>/_matrix/app/v1/*</c> for the homeserver (checking its
/// <c>hs_token</c>, processing each transaction once, in order) and dispatches typed events to the bridge's handlers;
/// hands out <see cref="Intent"/>s to act as the service's users. The memberships of its users that transactions
/// show are kept in <see cref="State"/>. It owns the transaction log (disposed with it).
/// </summary>
public sealed class AppService(AppServiceRegistration registration, string homeserverUrl, TransactionLog transactions, BridgeStateStore? state = null)
    : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };
    private readonly Dictionary<string, Intent> _intents = new(StringComparer.Ordinal);

    public AppServiceRegistration Registration { get; } = registration;
    public BridgeStateStore State { get; } = state ?? new BridgeStateStore();

    /// <summary>Each room event of a transaction, in order.</summary>
    public Func<RoomEvent, CancellationToken, Task> OnEvent { get; set; } = (_, _) => Task.CompletedTask;
    /// <summary>Each <c>m.room.message</c> sent by a user outside the service's namespaces (its own users' are echoes).</summary>
    public Func<RoomEvent, MessageContent, CancellationToken, Task> OnMessage { get; set; } = (_, _, _) => Task.CompletedTask;
    /// <summary>An invitation of one of the service's users (<see cref="RoomEvent.StateKey"/>) to a room.</summary>
    public Func<RoomEvent, CancellationToken, Task> OnInvite { get; set; } = (_, _) => Task.CompletedTask;
    public Func<TypingEvent, CancellationToken, Task> OnTyping { get; set; } = (_, _) => Task.CompletedTask;
    public Func<Receipt, CancellationToken, Task> OnReceipt { get; set; } = (_, _) => Task.CompletedTask;
    public Func<PresenceEvent, CancellationToken, Task> OnPresence { get; set; } = (_, _) => Task.CompletedTask;
    /// <summary>To-device messages for the service's devices (registrations with <c>org.matrix.msc3202: true</c>).</summary>
    public Func<ToDeviceMessage, CancellationToken, Task> OnToDevice { get; set; } = (_, _) => Task.CompletedTask;
    /// <summary>Device-list changes and key counts (registrations with <c>org.matrix.msc3202: true</c>); only non-empty updates.</summary>
    public Func<DeviceDataUpdate, CancellationToken, Task> OnDeviceData { get; set; } = (_, _) => Task.CompletedTask;
    /// <summary>The homeserver asks whether a user of the namespaces exists: create it and return true, or return false.</summary>
    public Func<string, CancellationToken, Task<bool>> OnUserQuery { get; set; } = (_, _) => Task.FromResult(false);
    /// <summary>The homeserver asks for a room alias of the namespaces: create the room and alias and return true, or false.</summary>
    public Func<string, CancellationToken, Task<bool>> OnAliasQuery { get; set; } = (_, _) => Task.FromResult(false);

    public Intent Intent(string userId)
    {
        lock (_intents)
            return _intents.TryGetValue(userId, out var intent) ? intent : _intents[userId] = new Intent(this, userId);
    }

    public Intent Bot => Intent(Registration.SenderUserId);

    /// <summary>Maps the homeserver-facing endpoints onto an ASP.NET application.</summary>
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPut("/_matrix/app/v1/transactions/{txnId}", TransactionAsync);
        app.MapGet("/_matrix/app/v1/users/{userId}", context => QueryAsync(context, "userId", OnUserQuery));
        app.MapGet("/_matrix/app/v1/rooms/{alias}", context => QueryAsync(context, "alias", OnAliasQuery));
        app.MapPost("/_matrix/app/v1/ping", async context =>
        {
            if (await AuthorisedAsync(context))
                await WriteAsync(context, 200, new JsonObject());
        });
    }

    private async Task<bool> AuthorisedAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        var token = header.StartsWith("Bearer ", StringComparison.Ordinal) ? header[7..] : context.Request.Query["access_token"].ToString();
        if (token.Length == 0)
        {
            await WriteAsync(context, 401, new JsonObject { ["errcode"] = "M_UNAUTHORIZED", ["error"] = "No hs_token." });
            return false;
        }
        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(token), Encoding.UTF8.GetBytes(Registration.HsToken)))
        {
            await WriteAsync(context, 403, new JsonObject { ["errcode"] = "M_FORBIDDEN", ["error"] = "Wrong hs_token." });
            return false;
        }
        return true;
    }

    private async Task TransactionAsync(HttpContext context)
    {
        if (!await AuthorisedAsync(context))
            return;
        JsonObject body;
        try
        {
            body = (await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted)) as JsonObject
                ?? throw new System.Text.Json.JsonException();
        }
        catch (System.Text.Json.JsonException)
        {
            await WriteAsync(context, 400, new JsonObject { ["errcode"] = "M_NOT_JSON", ["error"] = "A transaction is a JSON object." });
            return;
        }
        var txnId = context.Request.RouteValues["txnId"] as string ?? "";
        await transactions.ProcessOnceAsync(txnId, () => DispatchAsync(Transaction.Parse(body), context.RequestAborted), context.RequestAborted);
        await WriteAsync(context, 200, new JsonObject());
    }

    private async Task DispatchAsync(Transaction transaction, CancellationToken ct)
    {
        foreach (var e in transaction.Events)
        {
            if (e.Membership is { } membership && e.StateKey is { } member && Registration.IsInterestedInUser(member))
                State.SetJoined(e.RoomId, member, membership == "join");
            await OnEvent(e, ct);
            if (e.Message is { } message && !Registration.IsInterestedInUser(e.Sender))
                await OnMessage(e, message, ct);
            if (e.Membership == "invite" && Registration.IsInterestedInUser(e.StateKey!))
                await OnInvite(e, ct);
        }
        foreach (var typing in transaction.Typing)
            await OnTyping(typing, ct);
        foreach (var receipt in transaction.Receipts)
            await OnReceipt(receipt, ct);
        foreach (var presence in transaction.Presence)
            await OnPresence(presence, ct);
        foreach (var message in transaction.ToDevice)
            await OnToDevice(message, ct);
        if (!transaction.DeviceData.IsEmpty)
            await OnDeviceData(transaction.DeviceData, ct);
    }

    private async Task QueryAsync(HttpContext context, string parameter, Func<string, CancellationToken, Task<bool>> handler)
    {
        if (!await AuthorisedAsync(context))
            return;
        var id = context.Request.RouteValues[parameter] as string ?? "";
        if (await handler(id, context.RequestAborted))
            await WriteAsync(context, 200, new JsonObject());
        else
            await WriteAsync(context, 404, new JsonObject { ["errcode"] = "M_NOT_FOUND", ["error"] = "Not known to this service." });
    }

    private static async Task WriteAsync(HttpContext context, int status, JsonObject body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString());
    }

    /// <summary>A client-server request with the <c>as_token</c>, as <paramref name="userId"/> when given.</summary>
    internal Task<JsonNode?> RequestAsync(HttpMethod method, string path, string? userId, JsonObject? body, CancellationToken ct) =>
        RequestAsync(method, path, userId, body is null ? null : new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"), ct);

    /// <summary>The same with any body (media uploads).</summary>
    internal async Task<JsonNode?> RequestAsync(HttpMethod method, string path, string? userId, HttpContent? content, CancellationToken ct)
    {
        var url = homeserverUrl.TrimEnd('/') + path + (userId is null ? "" : (path.Contains('?') ? "&" : "?") + "user_id=" + Uri.EscapeDataString(userId));
        using var request = new HttpRequestMessage(method, url) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Registration.AsToken);
        using var response = await _http.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        var json = text.Length > 0 ? JsonNode.Parse(text) : null;
        if (response.IsSuccessStatusCode)
            return json;
        var errcode = json?["errcode"]?.GetValue<string>();
        if (response.StatusCode == HttpStatusCode.TooManyRequests)
            throw new RateLimitedException(TimeSpan.FromMilliseconds(json?["retry_after_ms"]?.GetValue<long>() ?? 1000));
        throw new MatrixRequestException((int)response.StatusCode, errcode, json?["error"]?.GetValue<string>() ?? $"HTTP {(int)response.StatusCode}");
    }

    public void Dispose()
    {
        _http.Dispose();
        transactions.Dispose();
        State.Flush();
    }
}
