using System.Text.Json;
using SleapRtc.Signaling.Monitor;

namespace SleapRtc.Monitor.Tests;

public sealed class MonitorWorkerViewTests
{
    private static MonitorPeer Peer(string role, string metadataJson) =>
        new("peer-1", role, JsonDocument.Parse(metadataJson).RootElement.Clone(), new DateTimeOffset(2026, 11, 23, 18, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Worker_properties_become_the_documented_fields()
    {
        var view = MonitorWorkerView.FromPeer(Peer("worker",
            """{"tags":["sleap-rtc","lab-a"],"properties":{"status":"busy","gpu_model":"NVIDIA A100","gpu_memory_mb":81920,"hostname":"gpu-01","cuda_version":"12.4","sleap_version":"1.4","worker_name":"alpha"}}"""));

        Assert.NotNull(view);
        using var json = JsonDocument.Parse(view.Json);
        var root = json.RootElement;
        Assert.Equal("peer-1", root.GetProperty("peer_id").GetString());
        Assert.Equal("alpha", root.GetProperty("name").GetString());
        Assert.Equal("busy", root.GetProperty("status").GetString());
        Assert.Equal("NVIDIA A100", root.GetProperty("gpu_model").GetString());
        Assert.Equal(81920, root.GetProperty("gpu_memory_mb").GetInt64());
        Assert.Equal("gpu-01", root.GetProperty("hostname").GetString());
        Assert.Equal("2026-11-23T18:00:00.000Z", root.GetProperty("connected_at").GetString());
        Assert.Equal(new[] { "sleap-rtc", "lab-a" }, root.GetProperty("tags").EnumerateArray().Select(t => t.GetString() ?? "").ToArray());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("job").ValueKind);
        Assert.Equal("12.4", root.GetProperty("properties").GetProperty("cuda_version").GetString());
    }

    [Fact]
    public void Clients_are_not_shown()
    {
        Assert.Null(MonitorWorkerView.FromPeer(Peer("client", """{"properties":{}}""")));
    }

    [Fact]
    public void An_inference_space_is_shown_with_its_name_state_and_queue()
    {
        var view = MonitorWorkerView.FromPeer(Peer("space",
            """{"tags":["sleap-rtc","inference-space"],"properties":{"status":"available","gpu_model":"NVIDIA L4","space":"mice","space_state":"busy","queue_length":3,"sleaprtc_ext":1}}"""));

        Assert.NotNull(view);
        using var json = JsonDocument.Parse(view.Json);
        var root = json.RootElement;
        Assert.Equal("space", root.GetProperty("role").GetString());
        var space = root.GetProperty("space");
        Assert.Equal(("mice", "busy", 3), (space.GetProperty("name").GetString(), space.GetProperty("state").GetString(), space.GetProperty("queue_length").GetInt32()));
        // The page decides on our extensions from the advertised properties, which stay as they were.
        Assert.Equal(1, root.GetProperty("properties").GetProperty("sleaprtc_ext").GetInt32());
        // A training worker has no space.
        var worker = MonitorWorkerView.FromPeer(Peer("worker", """{"properties":{"status":"available"}}"""));
        Assert.Equal(JsonValueKind.Null, JsonDocument.Parse(worker!.Json).RootElement.GetProperty("space").ValueKind);
    }

    [Fact]
    public void Job_in_snake_case_pascal_case_or_as_a_string_gets_one_shape()
    {
        var snake = MonitorWorkerView.FromPeer(Peer("worker",
            """{"properties":{"status":"busy","job":{"job_id":"j1","package":"flies.zip","config_index":2,"config_count":3,"epoch":4,"epoch_count":10,"loss":0.5,"loss_history":[0.9,0.7,0.5]}}}"""))!;
        var pascal = MonitorWorkerView.FromPeer(Peer("worker",
            """{"properties":{"status":"busy","job":{"JobId":"j1","PackageName":"flies.zip","ConfigIndex":2,"ConfigCount":3,"Epoch":4,"EpochCount":10,"Loss":0.5,"LossHistory":[0.9,0.7,0.5]}}}"""))!;
        var asString = MonitorWorkerView.FromPeer(Peer("worker",
            """{"properties":{"status":"busy","job":"{\"job_id\":\"j1\",\"package\":\"flies.zip\",\"config_index\":2,\"config_count\":3,\"epoch\":4,\"epoch_count\":10,\"loss\":0.5,\"loss_history\":[0.9,0.7,0.5]}"}}"""))!;

        Assert.Equal(snake.JobJson, pascal.JobJson);
        Assert.Equal(snake.JobJson, asString.JobJson);
        using var job = JsonDocument.Parse(snake.JobJson);
        Assert.Equal("flies.zip", job.RootElement.GetProperty("package_name").GetString());
        Assert.Equal(4, job.RootElement.GetProperty("epoch").GetInt32());
        Assert.Equal(10, job.RootElement.GetProperty("epoch_count").GetInt32());
        Assert.Equal(3, job.RootElement.GetProperty("loss_history").GetArrayLength());
        // The job is not repeated inside the raw properties.
        using var worker = JsonDocument.Parse(snake.Json);
        Assert.False(worker.RootElement.GetProperty("properties").TryGetProperty("job", out _));
    }

    [Fact]
    public void Loss_history_is_capped_to_the_latest_points()
    {
        var history = string.Join(",", Enumerable.Range(0, 500));
        var view = MonitorWorkerView.FromPeer(Peer("worker", "{\"properties\":{\"job\":{\"loss_history\":[" + history + "]}}}"))!;
        using var job = JsonDocument.Parse(view.JobJson);
        var points = job.RootElement.GetProperty("loss_history").EnumerateArray().Select(p => p.GetInt32()).ToArray();
        Assert.Equal(MonitorWorkerView.MaxLossHistoryPoints, points.Length);
        Assert.Equal(499, points[^1]);
    }

    [Fact]
    public void Markup_in_worker_text_is_escaped_in_the_json()
    {
        var view = MonitorWorkerView.FromPeer(Peer("worker", """{"properties":{"worker_name":"<script>alert(1)</script>"}}"""))!;
        Assert.DoesNotContain("<script>", view.Json, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(view.Json);
        Assert.Equal("<script>alert(1)</script>", json.RootElement.GetProperty("name").GetString());
    }
}
