// Package render holds what the chat and ticket deliverers (slack, discord,
// pagerduty, teams, jira) share to turn a delivery into text: the
// text/template engine their config templates run on, the data those
// templates see, decoding a payload and reading its fields, and cutting
// text to a length. What each destination builds from that text (Block Kit,
// embeds, Adaptive Cards, ADF, PagerDuty events) stays in its package.
package render
