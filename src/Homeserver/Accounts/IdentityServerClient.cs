using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts;

/// <summary>What an identity server answered to <c>/store-invite</c>.</summary>
public sealed record StoredInvite(string Token, string DisplayName, IReadOnlyList<(string PublicKey, string KeyValidityUrl)> PublicKeys);

/// <summary>
/// The identity service API v2, called on behalf of users at the identity server they name (<c>id_server</c>, a server
/// name): binding and unbinding 3PIDs, looking one up, storing a third-party invite, and checking a key is still valid.
/// Every request goes through the guarded client: an identity server is a URL a user chose.
/// </summary>
public sealed class IdentityServerClient(GuardedHttp guarded, HomeserverConfig config, Ed25519KeyPair key, ILogger<IdentityServerClient> logger)
{
    private readonly HttpClient _http = config.IdentityServers.InsecureSkipTlsVerify ? guarded.CreateClient(acceptAnyCertificate: true) : guarded.Client;

    /// <summary>The base URL of an identity server named by a client; 400 when it is not a server name.</summary>
    public string BaseUrl(string idServer)
    {
        if (!ServerName.TryParse(idServer, out _))
            throw MatrixException.InvalidParam("id_server must be a server name (host and optional port).");
        return $"{(config.IdentityServers.PlainHttp ? "http" : "https")}://{idServer}";
    }

    /// <summary>Binds the 3PID a session at the identity server validated to <paramref name="mxid"/>; the medium and address bound.</summary>
    public async Task<(string Medium, string Address)> BindAsync(string idServer, string idAccessToken, string sid, string clientSecret, string mxid,
        CancellationToken ct)
    {
        var response = await SendAsync(HttpMethod.Post, idServer, "/_matrix/identity/v2/3pid/bind", idAccessToken,
            new JsonObject { ["sid"] = sid, ["client_secret"] = clientSecret, ["mxid"] = mxid }, ct);
        if (response?["medium"]?.GetValue<string>() is not { } medium || response["address"]?.GetValue<string>() is not { } address)
            throw new MatrixException(502, "M_UNKNOWN", "The identity server's answer to the bind lacks medium or address.");
        return (medium, address);
    }

    /// <summary>
    /// Asks the identity server to forget a binding, signed as this server (spec: identity service <c>/3pid/unbind</c>);
    /// false when it does not support that or knows no such binding.
    /// </summary>
    public async Task<bool> UnbindAsync(string idServer, string mxid, string medium, string address, CancellationToken ct)
    {
        const string path = "/_matrix/identity/v2/3pid/unbind";
        var body = new JsonObject { ["mxid"] = mxid, ["threepid"] = new JsonObject { ["medium"] = medium, ["address"] = address } };
        using var request = new HttpRequestMessage(HttpMethod.Post, BaseUrl(idServer) + path) { Content = JsonContent.Create(body) };
        request.Headers.TryAddWithoutValidation("Authorization", XMatrix.Sign("POST", path, config.ServerName, idServer, body, key));
        using var timeout = Timeout(ct);
        try
        {
            using var response = await _http.SendAsync(request, timeout.Token);
            if (response.IsSuccessStatusCode)
                return true;
            if ((int)response.StatusCode is 400 or 404 or 501)
                return false;
            throw new MatrixException(502, "M_UNKNOWN", $"Failed to unbind the 3PID at the identity server ({(int)response.StatusCode}).");
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            logger.LogWarning("Identity server {IdServer} unreachable for unbind: {Reason}", idServer, e.Message);
            throw new MatrixException(502, "M_UNKNOWN", "Failed to reach the identity server to unbind the 3PID.");
        }
    }

    /// <summary>The user an identity server has the 3PID bound to, or null (hashed v2 lookup, or plain when that is all it offers).</summary>
    public async Task<string?> LookupAsync(string idServer, string idAccessToken, string medium, string address, CancellationToken ct)
    {
        var details = await SendAsync(HttpMethod.Get, idServer, "/_matrix/identity/v2/hash_details", idAccessToken, null, ct);
        var algorithms = (details?["algorithms"] as JsonArray)?.Select(a => a?.GetValue<string>()).ToList() ?? [];
        var pepper = details?["lookup_pepper"]?.GetValue<string>() ?? "";
        string algorithm, lookup;
        if (algorithms.Contains("sha256"))
        {
            algorithm = "sha256";
            lookup = UnpaddedBase64.EncodeUrlSafe(SHA256.HashData(Encoding.UTF8.GetBytes($"{address} {medium} {pepper}")));
        }
        else if (algorithms.Contains("none"))
        {
            algorithm = "none";
            lookup = $"{address} {medium}";
        }
        else
            throw new MatrixException(502, "M_UNKNOWN", "The identity server offers no lookup algorithm this server knows.");
        var result = await SendAsync(HttpMethod.Post, idServer, "/_matrix/identity/v2/lookup", idAccessToken,
            new JsonObject { ["addresses"] = new JsonArray(lookup), ["algorithm"] = algorithm, ["pepper"] = pepper }, ct);
        return result?["mappings"]?[lookup] is JsonValue mxid && mxid.TryGetValue<string>(out var userId) ? userId : null;
    }

    /// <summary>Stores a third-party invite at the identity server, which tells the invitee; its token and keys.</summary>
    public async Task<StoredInvite> StoreInviteAsync(string idServer, string idAccessToken, JsonObject invite, CancellationToken ct)
    {
        var answer = await SendAsync(HttpMethod.Post, idServer, "/_matrix/identity/v2/store-invite", idAccessToken, invite, ct);
        var token = answer?["token"] is JsonValue t && t.TryGetValue<string>(out var tokenText) ? tokenText : null;
        var keys = new List<(string, string)>();
        if (answer?["public_keys"] is JsonArray publicKeys)
            foreach (var entry in publicKeys)
                if (entry?["public_key"] is JsonValue pk && pk.TryGetValue<string>(out var publicKey)
                    && entry["key_validity_url"] is JsonValue url && url.TryGetValue<string>(out var validity))
                    keys.Add((publicKey, validity));
        if (token is null || keys.Count == 0)
            throw new MatrixException(502, "M_UNKNOWN", "The identity server's answer to store-invite lacks a token or public keys.");
        var displayName = answer?["display_name"] is JsonValue d && d.TryGetValue<string>(out var name) ? name : "";
        return new StoredInvite(token, displayName, keys);
    }

    /// <summary>Whether the identity server still vouches for a public key (its <c>key_validity_url</c>); false when it cannot be asked.</summary>
    public async Task<bool> IsKeyValidAsync(string keyValidityUrl, string publicKey, CancellationToken ct)
    {
        if (!Uri.TryCreate(keyValidityUrl, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            return false;
        if (config.IdentityServers.PlainHttp && url.Scheme == "https")
            url = new UriBuilder(url) { Scheme = "http", Port = url.Port }.Uri;
        using var timeout = Timeout(ct);
        try
        {
            var separator = url.Query.Length == 0 ? "?" : "&";
            var answer = await _http.GetFromJsonAsync<JsonObject>(url + separator + "public_key=" + Uri.EscapeDataString(publicKey), timeout.Token);
            return answer?["valid"] is JsonValue valid && valid.TryGetValue<bool>(out var isValid) && isValid;
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            logger.LogInformation("Key validity check at {Host} failed: {Reason}", url.Host, e.Message);
            return false;
        }
    }

    private CancellationTokenSource Timeout(CancellationToken ct)
    {
        var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(config.IdentityServers.TimeoutMs);
        return timeout;
    }

    private async Task<JsonObject?> SendAsync(HttpMethod method, string idServer, string path, string idAccessToken, JsonObject? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, BaseUrl(idServer) + path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", idAccessToken);
        if (body is not null)
            request.Content = JsonContent.Create(body);
        using var timeout = Timeout(ct);
        try
        {
            using var response = await _http.SendAsync(request, timeout.Token);
            var text = await response.Content.ReadAsStringAsync(timeout.Token);
            JsonObject? json = null;
            try
            {
                json = JsonNode.Parse(text) as JsonObject;
            }
            catch (System.Text.Json.JsonException)
            {
                // Not JSON: an error page; the status says enough.
            }
            if (response.IsSuccessStatusCode)
                return json;
            var errcode = json?["errcode"] is JsonValue code && code.TryGetValue<string>(out var c) ? c : "M_UNKNOWN";
            var error = json?["error"] is JsonValue message && message.TryGetValue<string>(out var m) ? m : $"The identity server answered {(int)response.StatusCode}.";
            throw new MatrixException((int)response.StatusCode is >= 400 and < 500 ? 400 : 502, errcode, error);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            logger.LogWarning("Identity server {IdServer} unreachable: {Reason}", idServer, e.Message);
            throw new MatrixException(502, "M_UNKNOWN", "Unable to reach the identity server.");
        }
    }
}
