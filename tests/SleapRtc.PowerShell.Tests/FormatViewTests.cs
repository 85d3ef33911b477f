namespace SleapRtc.PowerShell.Tests;

/// <summary>What users see at the prompt: the default views, rendered by Out-Host into the test host.</summary>
public sealed class FormatViewTests
{
    private static string Render(string script)
    {
        using var ps = new HostedPowerShell();
        ps.Run(script + " | Out-Host").ThrowOnError();
        // Header styling escapes depend on the host's terminal support; compare the text only.
        return System.Text.RegularExpressions.Regex.Replace(ps.Host.TestUI.Transcript, "\u001b\\[[0-9;]*m", "");
    }

    [Fact]
    public void Worker_table_shows_the_contracted_columns_and_the_GpuMemoryGB_alias_works()
    {
        var text = Render("[SleapRtc.WorkerInfo]@{ PeerId = 'worker-a'; GpuModel = 'NVIDIA A100'; GpuMemoryMB = 40960; Status = 'available'; Hostname = 'gpu-box'; Token = 'secret-room-token' }");
        var header = text.Split('\n').First(l => l.Contains("PeerId"));
        Assert.Equal(new[] { "PeerId", "GpuModel", "GpuMemoryMB", "Status", "Hostname" },
            header.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("NVIDIA A100", text);
        Assert.DoesNotContain("secret-room-token", text);

        using var ps = new HostedPowerShell();
        var gb = ps.Run("([SleapRtc.WorkerInfo]@{ GpuMemoryMB = 40960 }).GpuMemoryGB").Single<double>();
        Assert.Equal(40.0, gb);
    }

    [Fact]
    public void Room_views_never_show_the_full_token()
    {
        const string room = "[SleapRtc.Room]@{ RoomId = 'room-1'; Token = 'abcdefghijklmnopqrstuvwxyz'; Name = 'lab'; Server = 'http://s:8080' }";
        var table = Render(room);
        Assert.Contains("abcd********", table);
        Assert.DoesNotContain("abcdefghijklmnop", table);
        Assert.Contains("room-1", table);
    }

    [Fact]
    public void Every_output_type_has_a_view_and_no_view_shows_a_raw_token()
    {
        var format = System.Xml.Linq.XDocument.Load(Path.Combine(RepoPaths.Root, "bin", "SleapRtc.format.ps1xml"));
        var views = format.Descendants("View").ToList();
        var typesWithViews = views.SelectMany(v => v.Descendants("TypeName")).Select(t => t.Value).ToHashSet();
        foreach (var type in new[] { "SleapRtc.WorkerInfo", "SleapRtc.WorkerSession", "SleapRtc.Room", "SleapRtc.SessionInfo",
                     "SleapRtc.TrainingResult", "SleapRtc.SignalingServer", "SleapRtc.JobProgress" })
            Assert.Contains(type, typesWithViews);
        // Token columns only ever come from MaskedToken or a masking script block.
        Assert.DoesNotContain(views.SelectMany(v => v.Descendants("PropertyName")), p => p.Value == "Token");
    }

    [Fact]
    public void Session_views_mask_tokens()
    {
        var session = Render("[SleapRtc.SessionInfo]@{ RoomId = 'r'; Token = 'abcdefghijklmnop'; PeerId = 'p' }");
        Assert.Contains("abcd********", session);
        Assert.DoesNotContain("abcdefghijklmnop", session);
        var worker = Render("[SleapRtc.WorkerSession]@{ PeerId = 'p'; RoomId = 'r'; Token = 'abcdefghijklmnop' }");
        Assert.DoesNotContain("abcdefghijklmnop", worker);
    }

    [Fact]
    public void Training_result_view_shows_status_worker_and_model_count()
    {
        var text = Render("[SleapRtc.TrainingResult]@{ JobId = 'job-7'; WorkerId = 'worker-a'; Status = 'Succeeded'; ModelPaths = @('a.ckpt', 'b.ckpt'); OutputPath = '/tmp/models'; Duration = [timespan]::FromMinutes(3) }");
        var header = text.Split('\n').First(l => l.Contains("JobId"));
        Assert.Equal(new[] { "JobId", "WorkerId", "Status", "Duration", "Models", "OutputPath" }, header.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("00:03:00", text);
        Assert.Matches(@"job-7\s+worker-a\s+Succeeded\s+00:03:00\s+2\s+/tmp/models", text);
    }

    [Fact]
    public void Server_view_shows_url_port_and_state()
    {
        var text = Render("[SleapRtc.SignalingServer]@{ Url = 'http://127.0.0.1:5000'; Port = 5000; State = 'Running' }");
        Assert.Matches(@"http://127\.0\.0\.1:5000\s+5000\s+Running", text);
    }
}
