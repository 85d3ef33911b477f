BeforeAll { . (Join-Path $PSScriptRoot 'common.ps1') }

Describe 'ConvertTo-SleapSessionString / ConvertFrom-SleapSessionString' {
    It 'writes the classic padded format' {
        ConvertTo-SleapSessionString -RoomId r1 -Token t1 -PeerId p1 |
            Should -Be 'sleap-session:eyJyIjogInIxIiwgInQiOiAidDEiLCAicCI6ICJwMSJ9'
    }
    It 'round-trips through the pipeline, server included' {
        $info = ConvertTo-SleapSessionString r1 t1 p1 -Server ws://lab:8080 | ConvertFrom-SleapSessionString
        $info | Should -BeOfType SleapRtc.SessionInfo
        $info.RoomId, $info.Token, $info.PeerId, $info.Server | Should -Be 'r1', 't1', 'p1', 'ws://lab:8080'
    }
    It 'carries a list of servers (-Server a,b) as one comma list' {
        $info = ConvertTo-SleapSessionString r1 t1 p1 -Server ws://a:8080, ws://b:8080 | ConvertFrom-SleapSessionString
        $info.Server | Should -Be 'ws://a:8080,ws://b:8080'
    }
    It 'tolerates a missing prefix and missing padding' {
        $padded = ConvertTo-SleapSessionString -RoomId room-12 -Token tok -PeerId peer
        (ConvertFrom-SleapSessionString ($padded -replace '^sleap-session:' -replace '=+$')).RoomId | Should -Be 'room-12'
    }
    It 'reports an invalid string once and carries on' {
        $out = 'garbage', (ConvertTo-SleapSessionString r t p) | ConvertFrom-SleapSessionString -ErrorVariable errs -ErrorAction SilentlyContinue
        @($out).Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'InvalidSessionString,*'
        $errs[0].ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
    }
}
