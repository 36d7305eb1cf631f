using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Xml.Linq;

namespace Matrix.Bridges.Calendar.CalDav;

/// <summary>A calendar object resource on the server: its path, its entity tag and (when fetched) its iCalendar text.</summary>
public sealed record CalendarResource(string Href, string? ETag, string? Data);

/// <summary>The collection's change markers: the RFC 6578 sync token and the CalendarServer ctag (either may be absent).</summary>
public sealed record CollectionState(bool IsCalendar, string? SyncToken, string? CTag, string? DisplayName);

/// <summary>What changed since a sync token: resources added or changed (href and new etag), hrefs removed, and the new token.</summary>
public sealed record SyncDelta(IReadOnlyList<CalendarResource> Changed, IReadOnlyList<string> Removed, string? SyncToken);

public class CalDavException(string message, HttpStatusCode? status = null) : Exception(message)
{
    public HttpStatusCode? Status { get; } = status;
}

/// <summary>The server no longer accepts the sync token (RFC 6578 section 3.2: <c>DAV:valid-sync-token</c>): sync from scratch.</summary>
public sealed class SyncTokenExpiredException() : CalDavException("the sync token is no longer valid", HttpStatusCode.Forbidden);

/// <summary>The resource changed on the server since it was read (a failed If-Match or If-None-Match).</summary>
public sealed class CalDavConflictException(string href) : CalDavException($"{href} changed on the server", HttpStatusCode.PreconditionFailed);

/// <summary>
/// A CalDAV client for one calendar collection (RFC 4791, with RFC 6578 collection sync): reads the collection's
/// change markers, the changes since a sync token (or every resource's etag, for servers without sync), fetches
/// resources in batches (calendar-multiget), and creates, replaces and deletes them with preconditions, so a
/// concurrent change by another client is detected, never overwritten.
/// </summary>
public sealed class CalDavClient(HttpClient http, Uri collection, NetworkCredential? credentials)
{
    private static readonly XNamespace Dav = "DAV:";
    private static readonly XNamespace CalDavNs = "urn:ietf:params:xml:ns:caldav";
    private static readonly XNamespace CalendarServer = "http://calendarserver.org/ns/";
    private const int MultigetBatch = 50;

    public Uri Collection { get; } = collection.AbsoluteUri.EndsWith('/') ? collection : new Uri(collection.AbsoluteUri + "/");

    public async Task<CollectionState> GetStateAsync(CancellationToken ct)
    {
        var body = new XElement(Dav + "propfind", new XElement(Dav + "prop",
            new XElement(Dav + "resourcetype"), new XElement(Dav + "sync-token"), new XElement(CalendarServer + "getctag"), new XElement(Dav + "displayname")));
        var answer = await MultiStatusAsync(new HttpMethod("PROPFIND"), Collection, body, depth: "0", ct);
        var props = answer.Descendants(Dav + "propstat").Where(p => IsOk(p.Element(Dav + "status"))).Select(p => p.Element(Dav + "prop")).OfType<XElement>().ToList();
        string? Text(XName name) => props.Select(p => p.Element(name)?.Value.Trim()).FirstOrDefault(v => !string.IsNullOrEmpty(v));
        var isCalendar = props.Any(p => p.Element(Dav + "resourcetype")?.Element(CalDavNs + "calendar") is not null);
        return new CollectionState(isCalendar, Text(Dav + "sync-token"), Text(CalendarServer + "getctag"), Text(Dav + "displayname"));
    }

    /// <summary>The changes since <paramref name="syncToken"/> (all resources when null), RFC 6578 sync-collection.</summary>
    public async Task<SyncDelta> SyncAsync(string? syncToken, CancellationToken ct)
    {
        var body = new XElement(Dav + "sync-collection",
            new XElement(Dav + "sync-token", syncToken ?? ""),
            new XElement(Dav + "sync-level", "1"),
            new XElement(Dav + "prop", new XElement(Dav + "getetag")));
        XDocument answer;
        try
        {
            answer = await MultiStatusAsync(new HttpMethod("REPORT"), Collection, body, depth: null, ct);
        }
        catch (CalDavException e) when (syncToken is not null && e.Status is HttpStatusCode.Forbidden or HttpStatusCode.Conflict)
        {
            throw new SyncTokenExpiredException();
        }
        var changed = new List<CalendarResource>();
        var removed = new List<string>();
        foreach (var response in answer.Descendants(Dav + "response"))
        {
            if (response.Element(Dav + "href")?.Value.Trim() is not { Length: > 0 } href || IsCollection(href))
                continue;
            if (response.Element(Dav + "status") is { } status && status.Value.Contains(" 404", StringComparison.Ordinal))
                removed.Add(href);
            else if (Etag(response) is { } etag)
                changed.Add(new CalendarResource(href, etag, null));
        }
        return new SyncDelta(changed, removed, answer.Root?.Element(Dav + "sync-token")?.Value.Trim());
    }

    /// <summary>Every resource's href and etag (PROPFIND depth 1), for servers without collection sync.</summary>
    public async Task<List<CalendarResource>> ListAsync(CancellationToken ct)
    {
        var body = new XElement(Dav + "propfind", new XElement(Dav + "prop", new XElement(Dav + "getetag"), new XElement(Dav + "resourcetype")));
        var answer = await MultiStatusAsync(new HttpMethod("PROPFIND"), Collection, body, depth: "1", ct);
        return answer.Descendants(Dav + "response")
            .Select(r => (Href: r.Element(Dav + "href")?.Value.Trim(), ETag: Etag(r)))
            .Where(r => r.Href is { Length: > 0 } && !IsCollection(r.Href) && r.ETag is not null)
            .Select(r => new CalendarResource(r.Href!, r.ETag, null)).ToList();
    }

    /// <summary>The resources' current etag and iCalendar text (calendar-multiget, in batches); missing ones are left out.</summary>
    public async Task<List<CalendarResource>> GetAsync(IReadOnlyCollection<string> hrefs, CancellationToken ct)
    {
        var result = new List<CalendarResource>();
        foreach (var batch in hrefs.Chunk(MultigetBatch))
        {
            var body = new XElement(CalDavNs + "calendar-multiget",
                new XElement(Dav + "prop", new XElement(Dav + "getetag"), new XElement(CalDavNs + "calendar-data")),
                batch.Select(h => new XElement(Dav + "href", h)));
            var answer = await MultiStatusAsync(new HttpMethod("REPORT"), Collection, body, depth: "1", ct);
            foreach (var response in answer.Descendants(Dav + "response"))
            {
                var data = response.Descendants(CalDavNs + "calendar-data").FirstOrDefault()?.Value;
                if (response.Element(Dav + "href")?.Value.Trim() is { Length: > 0 } href && !string.IsNullOrWhiteSpace(data))
                    result.Add(new CalendarResource(href, Etag(response), data));
            }
        }
        return result;
    }

    /// <summary>Creates a resource named after the UID (If-None-Match: *); returns its href and, when the server says, its etag.</summary>
    public async Task<CalendarResource> CreateAsync(string uid, string data, CancellationToken ct)
    {
        var name = new string(uid.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray()) + ".ics";
        var url = new Uri(Collection, name);
        var etag = await PutAsync(url, data, request => request.Headers.IfNoneMatch.Add(EntityTagHeaderValue.Any), ct);
        return new CalendarResource(url.AbsolutePath, etag, data);
    }

    /// <summary>Replaces a resource if it is still at <paramref name="etag"/>; returns the new etag when the server says.</summary>
    public Task<string?> UpdateAsync(string href, string data, string? etag, CancellationToken ct) =>
        PutAsync(new Uri(Collection, href), data, request => IfMatch(request, etag), ct);

    public async Task DeleteAsync(string href, string? etag, CancellationToken ct)
    {
        // A retried DELETE that had gone through answers 404: the resource is gone either way.
        using var response = await SendAsync(() =>
        {
            var request = Request(HttpMethod.Delete, new Uri(Collection, href));
            IfMatch(request, etag);
            return request;
        }, ct);
        if (response.Answer.StatusCode == HttpStatusCode.PreconditionFailed)
            throw new CalDavConflictException(href);
        if (!response.Answer.IsSuccessStatusCode && response.Answer.StatusCode != HttpStatusCode.NotFound)
            throw new CalDavException($"DELETE {href}: HTTP {(int)response.Answer.StatusCode}", response.Answer.StatusCode);
    }

    private async Task<string?> PutAsync(Uri url, string data, Action<HttpRequestMessage> precondition, CancellationToken ct)
    {
        using var response = await SendAsync(() =>
        {
            var request = Request(HttpMethod.Put, url);
            request.Content = new StringContent(data, Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("text/calendar") { CharSet = "utf-8" };
            precondition(request);
            return request;
        }, ct);
        if (response.Answer.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            // A retried PUT whose first attempt had gone through fails its precondition on our own write.
            if (response.Retried && (await GetAsync([url.AbsolutePath], ct)).FirstOrDefault() is { } current && current.Data == data)
                return current.ETag;
            throw new CalDavConflictException(url.AbsolutePath);
        }
        if (!response.Answer.IsSuccessStatusCode)
            throw new CalDavException($"PUT {url.AbsolutePath}: HTTP {(int)response.Answer.StatusCode} {await Excerpt(response.Answer, ct)}", response.Answer.StatusCode);
        return response.Answer.Headers.ETag?.ToString();
    }

    private const int Attempts = 3;

    /// <summary>A response, and whether it came from a second or later attempt.</summary>
    private sealed record Sent(HttpResponseMessage Answer, bool Retried) : IDisposable
    {
        public void Dispose() => Answer.Dispose();
    }

    /// <summary>
    /// Sends a request, again (freshly built) when the connection fails without an answer, as happens with servers
    /// that close each connection (HTTP/1.0, as Radicale's built-in server does) when a new one races the close.
    /// A server that never answers is a <see cref="CalDavException"/>, so callers can tell it from the homeserver failing.
    /// </summary>
    private async Task<Sent> SendAsync(Func<HttpRequestMessage> build, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return new Sent(await http.SendAsync(build(), ct), attempt > 1);
            }
            catch (HttpRequestException) when (attempt < Attempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50 * attempt), ct);
            }
            catch (HttpRequestException e)
            {
                throw new CalDavException($"no answer ({e.GetBaseException().Message})");
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new CalDavException($"no answer within {http.Timeout.TotalSeconds:0} s");
            }
        }
    }

    private static void IfMatch(HttpRequestMessage request, string? etag)
    {
        if (etag is not null && EntityTagHeaderValue.TryParse(etag, out var tag))
            request.Headers.IfMatch.Add(tag);
    }

    private HttpRequestMessage Request(HttpMethod method, Uri url)
    {
        var request = new HttpRequestMessage(method, url);
        if (credentials is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.UserName}:{credentials.Password}")));
        return request;
    }

    private async Task<XDocument> MultiStatusAsync(HttpMethod method, Uri url, XElement body, string? depth, CancellationToken ct)
    {
        var xml = new XDocument(new XDeclaration("1.0", "utf-8", null), body).ToString();
        using var sent = await SendAsync(() =>
        {
            var request = Request(method, url);
            request.Content = new StringContent(xml, Encoding.UTF8, "application/xml");
            if (depth is not null)
                request.Headers.Add("Depth", depth);
            return request;
        }, ct);
        var response = sent.Answer;
        if (response.StatusCode != HttpStatusCode.MultiStatus)
        {
            var detail = response.StatusCode == HttpStatusCode.Unauthorized ? "the calendar server refused the credentials" : await Excerpt(response, ct);
            throw new CalDavException($"{method} {url.AbsolutePath}: HTTP {(int)response.StatusCode} {detail}", response.StatusCode);
        }
        try
        {
            return XDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        }
        catch (System.Xml.XmlException e)
        {
            throw new CalDavException($"{method} {url.AbsolutePath}: the answer is not XML ({e.Message})");
        }
    }

    private static async Task<string> Excerpt(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct);
        return text.Length > 200 ? text[..200] : text;
    }

    private bool IsCollection(string href) => Uri.UnescapeDataString(href).TrimEnd('/') == Uri.UnescapeDataString(Collection.AbsolutePath).TrimEnd('/');

    private static bool IsOk(XElement? status) => status is null || status.Value.Contains(" 200", StringComparison.Ordinal);

    private static string? Etag(XElement response) => response.Descendants(Dav + "propstat")
        .Where(p => IsOk(p.Element(Dav + "status")))
        .Select(p => p.Element(Dav + "prop")?.Element(Dav + "getetag")?.Value.Trim()).FirstOrDefault(e => !string.IsNullOrEmpty(e));
}
