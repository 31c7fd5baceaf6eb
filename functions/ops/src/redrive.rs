//! `redrive`: moves a consumer queue's dead-letter messages (`<prefix>-<queue>-dlq`) back to
//! its queue, once whatever made the consumer fail them is mended: a message is dead-lettered
//! after its receives ran out, and nothing else ever looks at it again. Each message is
//! deleted from the dead-letter queue only once the queue has it, so a failed send leaves it
//! where it was.

use crate::cli::{Error, fail, queue_attribute, queue_depth};
use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, QueueAttributeName, SendMessageBatchRequestEntry,
};

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// The queue's physical name.
    pub queue: String,
    /// Its dead-letter queue's.
    pub dlq: String,
    /// Messages moved back.
    pub moved: usize,
    /// Messages that could not be sent back (they stay in the DLQ).
    pub failed: usize,
    /// Approximate messages left in the DLQ afterwards.
    pub left: usize,
}

/// Moves up to `max` messages of `<prefix>-<queue>-dlq` back to `<prefix>-<queue>`, each
/// deleted from the DLQ only once the queue has it.
pub async fn redrive(
    sqs: &Sqs,
    prefix: &str,
    queue: &str,
    max: Option<usize>,
) -> Result<Redrive, Error> {
    let queue_name = format!("{prefix}-{queue}");
    let dlq_name = format!("{queue_name}-dlq");
    let url = |name: String| async move {
        crate::cli::queue_url(sqs, &name)
            .await
            .map_err(|why| fail(format!("no queue {name}: {why}")))
    };
    let queue_url = url(queue_name.clone()).await?;
    let dlq_url = url(dlq_name.clone()).await?;
    let policy = queue_attribute(sqs, &queue_url, QueueAttributeName::RedrivePolicy).await?;
    let dlq_arn = queue_attribute(sqs, &dlq_url, QueueAttributeName::QueueArn).await?;
    if !policy.contains(&dlq_arn) {
        return Err(fail(format!(
            "{queue_name} does not dead-letter to {dlq_name}"
        )));
    }
    let (mut moved, mut failed) = (0, 0);
    let mut empty_polls = 0;
    while empty_polls < 2 && max.is_none_or(|m| moved + failed < m) {
        let want = max.map_or(10, |m| (m - moved - failed).min(10));
        let out = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .max_number_of_messages(i32::try_from(want).unwrap_or(10))
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = out.messages();
        if messages.is_empty() {
            empty_polls += 1;
            continue;
        }
        empty_polls = 0;
        let mut entries = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body().unwrap_or_default())
                    .set_message_attributes(m.message_attributes().cloned())
                    .build()?,
            );
        }
        let sent = sqs
            .send_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
        failed += sent.failed().len();
        let mut deletes = Vec::new();
        for ok in sent.successful() {
            let i: usize = ok.id().parse().unwrap_or(usize::MAX);
            if let Some(h) = messages.get(i).and_then(|m| m.receipt_handle()) {
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(ok.id())
                        .receipt_handle(h)
                        .build()?,
                );
            }
        }
        moved += deletes.len();
        if !deletes.is_empty() {
            sqs.delete_message_batch()
                .queue_url(&dlq_url)
                .set_entries(Some(deletes))
                .send()
                .await?;
        }
    }
    let left = queue_depth(sqs, &dlq_url).await?;
    Ok(Redrive {
        queue: queue_name,
        dlq: dlq_name,
        moved,
        failed,
        left,
    })
}
