using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.AppServices.Registration;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>The answer of an application service: its status and JSON body, or a failure to reach it.</summary>
public sealed record AppServiceAnswer(int Status, JsonNode? Body, string? Failure, bool TimedOut = false)
{
    public bool Ok => Status is >= 200 and < 300;
}

/// <summary>
/// Requests from the homeserver to an application service (spec: application-service API): every one carries the
/// <c>hs_token</c> in the Authorization header (and, with <c>app_service_legacy_authorization</c>, in the pre-v1.4
/// <c>access_token</c> query parameter too), is bounded in time and never throws for an unreachable service.
/// </summary>
public sealed class AppServiceClient(Config.HomeserverConfig config)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly HttpClient _http = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10), AllowAutoRedirect = false })
    {
        Timeout = System.Threading.Timeout.InfiniteTimeSpan,
    };

    public async Task<AppServiceAnswer> SendAsync(AppServiceRegistration service, HttpMethod method, string pathAndQuery, JsonNode? body,
        CancellationToken ct)
    {
        if (service.Url is not { } url)
            return new AppServiceAnswer(0, null, "The application service has no URL.");
        if (config.AppServiceLegacyAuthorization)
            pathAndQuery += (pathAndQuery.Contains('?') ? '&' : '?') + "access_token=" + Uri.EscapeDataString(service.HsToken);
        using var request = new HttpRequestMessage(method, url.TrimEnd('/') + pathAndQuery);
        if (body is not null)
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", service.HsToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Timeout);
        try
        {
            using var response = await _http.SendAsync(request, timeout.Token);
            var text = await response.Content.ReadAsStringAsync(timeout.Token);
            JsonNode? json = null;
            try
            {
                json = text.Length > 0 ? JsonNode.Parse(text) : null;
            }
            catch (System.Text.Json.JsonException)
            {
            }
            return new AppServiceAnswer((int)response.StatusCode, json, null);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new AppServiceAnswer(0, null, "The application service did not answer in time.", TimedOut: true);
        }
        catch (HttpRequestException e)
        {
            return new AppServiceAnswer(0, null, e.Message);
        }
    }

    /// <summary>
    /// <c>POST /_matrix/app/v1/ping</c>, for the client API's appservice ping: the round trip in milliseconds, or the
    /// spec's error for a service without URL, unreachable, too slow, or answering with an error.
    /// </summary>
    public async Task<long> PingAsync(AppServiceRegistration service, string? transactionId, CancellationToken ct)
    {
        if (service.Url is null)
            throw new MatrixException(400, "M_URL_NOT_SET", "The application service has no URL.");
        var body = new JsonObject();
        if (transactionId is not null)
            body["transaction_id"] = transactionId;
        var stopwatch = Stopwatch.StartNew();
        var answer = await SendAsync(service, HttpMethod.Post, "/_matrix/app/v1/ping", body, ct);
        if (answer.TimedOut)
            throw new MatrixException(504, "M_CONNECTION_TIMEOUT", "The application service did not answer in time.");
        if (answer.Failure is not null)
            throw new MatrixException(502, "M_CONNECTION_FAILED", "The application service could not be reached.");
        if (!answer.Ok)
            throw new MatrixException(502, "M_BAD_STATUS", "The application service answered with an error.",
                new JsonObject { ["status"] = answer.Status, ["body"] = answer.Body?.ToJsonString() ?? "" });
        return stopwatch.ElapsedMilliseconds;
    }
}
