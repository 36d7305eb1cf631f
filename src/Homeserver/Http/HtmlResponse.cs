namespace Matrix.Homeserver.Http;

/// <summary>The server's own web pages (sign-in, consent, single sign-on): never cached, never framed, no outside resources.</summary>
public static class HtmlResponse
{
    /// <param name="inlineScript">the page runs its own inline script (the UIA fallback's "done" page tells its opener)</param>
    public static Task WriteAsync(HttpContext context, string html, int status = 200, bool inlineScript = false)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers["Content-Security-Policy"] =
            $"default-src 'none'; style-src 'unsafe-inline';{(inlineScript ? " script-src 'unsafe-inline';" : "")} frame-ancestors 'none'";
        context.Response.Headers.XFrameOptions = "DENY";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        context.Response.Headers["Referrer-Policy"] = "no-referrer";
        return context.Response.WriteAsync(html, context.RequestAborted);
    }
}
