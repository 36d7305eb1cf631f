namespace Matrix.Homeserver.Http;

/// <summary>
/// The server's own web pages (sign-in, consent, single sign-on, UIA fallbacks): never cached, never framed, no outside
/// resources but a captcha widget's.
/// </summary>
public static class HtmlResponse
{
    /// <param name="inlineScript">the page runs its own inline script (the UIA fallback's "done" page tells its opener)</param>
    /// <param name="externalSources">origins the page may load scripts and frames from (a captcha widget)</param>
    public static Task WriteAsync(HttpContext context, string html, int status = 200, bool inlineScript = false, string? externalSources = null)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        var scripts = (inlineScript ? " 'unsafe-inline'" : "") + (externalSources is null ? "" : " " + externalSources);
        context.Response.Headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline';"
            + (scripts.Length > 0 ? $" script-src{scripts};" : "") + (externalSources is null ? "" : $" frame-src {externalSources};") + " frame-ancestors 'none'";
        context.Response.Headers.XFrameOptions = "DENY";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        context.Response.Headers["Referrer-Policy"] = "no-referrer";
        return context.Response.WriteAsync(html, context.RequestAborted);
    }
}
