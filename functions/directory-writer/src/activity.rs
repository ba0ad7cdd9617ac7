//! Activity data of one user and kind (grants, mailbox rules, apps), stored with the employee
//! the directory user belongs to, or removed when the user has none left.

use chrono::Utc;
use rollcall::directory::{self, Activity, ActivityItem, DirectoryUserItem};
use rollcall::telemetry::storage_time;

use crate::{ApplyError, Context, DirectoryWriter};

impl DirectoryWriter {
    pub(crate) async fn apply_activity(
        &self,
        context: &Context<'_>,
        user_id: &str,
        activity: &Activity,
    ) -> Result<(), ApplyError> {
        let sk = directory::activity_sk(context.provider, activity.kind(), user_id);
        if activity.is_empty() {
            self.commit(context, vec![self.delete(&context.pk, &sk)])
                .await?;
            return Ok(());
        }
        let hash = activity.content_hash();
        let stored: Option<ActivityItem> = self.store.get(&context.pk, &sk).await?;
        if stored.is_some_and(|s| s.content_hash == hash) {
            return Ok(());
        }
        let user: Option<DirectoryUserItem> = self
            .store
            .get(
                &context.pk,
                &directory::directory_user_sk(context.provider, user_id),
            )
            .await?;
        let item = ActivityItem {
            pk: context.pk.clone(),
            sk,
            provider: context.provider,
            user_id: user_id.to_owned(),
            employee_id: user.and_then(|u| u.employee_id),
            activity: activity.clone(),
            content_hash: hash,
            updated_at: storage_time(Utc::now()),
        };
        self.commit(context, vec![self.store.put_replace(&item)?])
            .await?;
        Ok(())
    }
}
